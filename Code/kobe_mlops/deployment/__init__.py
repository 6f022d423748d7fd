"""TDSP stage 3, deployment and operation: apply the champion, serve it, monitor it."""
