"""TDSP stage 3, deployment and operation (monitoring): is the champion still fit for production?

Drift between development and production, model health with and without labels, the retraining
triggers and their trends, and the retraining loop that acts on them. Everything here reads
what the deployment stage produced (scored files, application runs); nothing here scores a file.
"""
