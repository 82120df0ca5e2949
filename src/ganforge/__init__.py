"""ganforge: train, measure, use and detect generative adversarial networks.

One package for the classic GAN (Goodfellow et al. 2014), DCGAN (Radford et al. 2016), progressive growing
(Karras et al. 2018), style-based generators (Karras et al. 2019, 2020), unpaired translation (UNIT, Liu et al. 2017)
and a detector of generated images.
"""

__version__ = "0.1.0"
