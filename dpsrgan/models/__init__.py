"""DPSRGAN networks: the dilated SRResNet generator, the conditional PatchGAN discriminator and
the frozen VGG19 feature extractor of the perceptual loss. Import from the submodules
(``dpsrgan.models.generator`` ...); this package stays empty so importing one does not load all.
"""
