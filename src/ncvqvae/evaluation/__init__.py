"""ncvqvae.evaluation"""
