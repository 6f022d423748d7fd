"""TDSP stage 1, data acquisition and understanding: fetch, verify, describe, validate, prepare."""
