"""ncvqvae.data"""
