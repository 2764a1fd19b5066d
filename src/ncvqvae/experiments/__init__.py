"""ncvqvae.experiments"""
