"""ncvqvae.models"""
