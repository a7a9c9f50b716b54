"""The brochure's Craft listing (Astro section), kept as literal as Python allows.

Changes, each listed in tests-integration/README.md: ``import nebulae`` added (the listing uses
``nebulae.Law``), and ``super(Net, self)`` written ``super(NetNeb, self)`` / ``super(NetTorch, self)``.
"""
# ruff: noqa: I001, UP008
# fmt: off

from nebulae.astro import dock
import torch
import nebulae

# designate pytorch as core backend
nebulae.Law.CORE = 'pytorch'
# create a network using nebulae
class NetNeb(dock.Craft):
    def __init__(self, nclass, scope='NEB'):
        super(NetNeb, self).__init__(scope)
        self.flat = dock.Reshape()
        self.fc = dock.Dense(512, nclass)
    def run(self, x):
        x = self.flat(x, (-1, 512))
        y = self.fc(x)
        return y
# you can create a same network using pytorch functions
class NetTorch(dock.Craft):
    def __init__(self, nclass, scope='TORCH'):
        super(NetTorch, self).__init__(scope)
        self.fc = torch.nn.Linear(512, nclass)
    def run(self, x):
        x = x.view(-1, 512)
        y = self.fc(x)
        return y
