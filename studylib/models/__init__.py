"""Models: the invertible flows (conditional GLOW, RealNVP), the class-conditional priors,
the conditional PixelCNN++, the Flow-GAN's discriminator and the linear flow of chapter 7."""
