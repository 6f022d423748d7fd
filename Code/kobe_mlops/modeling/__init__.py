"""TDSP stage 2, modeling: training, evaluation, model selection, registration."""
