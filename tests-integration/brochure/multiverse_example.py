"""The brochure's Multiverse example, completed so that it runs: ``python multiverse_example.py [nworld]``.

Run it in a directory holding ``fuel.hdf5`` (8x8 RGB images, labels 0/1; see test_brochure_multiverse.py).
Lines marked ``# [changed]`` differ from the brochure and lines marked ``# [added]`` fill a comment-only
gap; tests-integration/README.md lists each with the reason. Every rank writes ``rank{r}.json``
(losses, a parameter checksum and the samples it saw) so the test can compare the ranks.
"""
# ruff: noqa: I001, UP008
# fmt: off

import json  # [added]
import os  # [added]
import sys  # [added]

import torch  # [added]
import torch.nn.functional as F  # [added]

import nebulae as neb
from nebulae.fuel import farm
from nebulae.astro import dock
from nebulae.cockpit import Engine, TimeMachine, GPU
from nebulae.cockpit import CPU  # [added]
from nebulae.aerolog import DashBoard  # [added]
#
       ############
def launch(mv=None): ## <======[1]
   #
        ############
   ############
  mv.init() ## <========[2]
  ############
   # ------ #
  # defined Dashboard
  db = DashBoard(log_path="./aerolog")  # [added]
   ###################
  device = GPU if os.environ.get("NEB_GPUS") else CPU  # [added] the parent found GPUs to give
  ng = Engine(device=device, ngpu=mv.nworld) ## <=======[3]  # [changed] device=GPU
                     ####################
  tm = TimeMachine(save_path="./ckpt",
                ckpt_path="./ckpt")
   # ------ Fuel ----- #
   # define dataset Tanks
  def fetcher(data, idx):  # [added]
      return {"image": data["image"][idx], "label": data["label"][idx].astype("int64"), "row": idx}
  def prep(data):  # [added]
      data["image"] = (data["image"].transpose(2, 0, 1) / 255.0).astype("float32")
      return data
  dT = farm.Tank("./fuel.hdf5", {"image": "vuint8", "label": "int64"}, 4, fetch_fn=fetcher,  # [added]
                 prep_fn=prep, seed=7, nworker=1, verbose=False)
  dV = farm.Tank("./fuel.hdf5", {"image": "vuint8", "label": "int64"}, 4, shuffle=False,  # [added]
                 fetch_fn=fetcher, prep_fn=prep, seed=7, nworker=0, verbose=False)
  mpe = dT.MPE  # [added] the brochure's loop uses mpe without defining it
  class Net(dock.Craft):
      def __init__(self, nclass, scope):
          super(Net, self).__init__(scope)
          # define architecutre
          self.flat = dock.Reshape()  # [added]
          self.fc = dock.Dense(3 * 8 * 8, nclass)  # [added]
      def run(self, x, z):  # [changed] def run(self, x): Train calls self.net(x, z)
          # define forward procedure
          return F.cross_entropy(self.fc(self.flat(x, (-1, 3 * 8 * 8))), z)  # [added]
  class Train(dock.Craft):
      def __init__(self, net, scope='TRAIN'):
          super(Train, self).__init__(scope)
          self.net = net
          # initialize params
          self.optz = dock.Momentum(net, 0.01)  # [added]
      def run(self, x, z):
          # define training step
          loss = self.net(x, z)
          #####################################
          loss = mv.reduce(loss) ## <=======[4]
          #############################
          self.optz(loss)  # [added]
          return loss  # [added]
  class Dev(dock.Craft):
      def __init__(self, net, scope='DEVELOP'):
          super(Dev, self).__init__(scope)
          self.net = net
          # initialize params
      def run(self, x, z, idx):
          # define testing step
          loss = self.net(x, z)
          loss = mv.reduce(loss) ## <=======[4]
          return loss  # [added]
          # ----- # Launcher ----- #
  torch.manual_seed(0)  # [added] a reproducible run
  net = Net(10, 'cnn')
  net.gear(ng)
  #########################
  net = mv.sync(net) ## <====[5]
  #########################
  train = Train(net)
  dev = Dev(net)
  report = {"train": [], "dev": [], "rows": []}  # [added]
  for epoch in range(10):
      for mile in range(mpe):
          # train and test
          batch = dT.next()  # [added]
          report["rows"] += [int(r) for r in batch["row"]] if epoch == 0 else []  # [added]
          with dock.Rudder() as r:  # [added]
              net.gear(r)  # [added]
              loss = train(dock.coat(batch["image"]), dock.coat(batch["label"]))  # [added]
          db.gauge({"loss": dock.shell(loss)}, mile, epoch, mpe, "TRAIN")  # [added]
          report["train"].append(float(dock.shell(loss)))  # [added]
          pass
      with dock.Nozzle() as n:  # [added]
          net.gear(n)  # [added]
          batch = dV.next()  # [added]
          report["dev"].append(float(dock.shell(dev(dock.coat(batch["image"]), dock.coat(batch["label"]), 0))))  # [added]
  db.log(gauge=False)  # [added]
  tm.drop(net)  # [added]
  report["checksum"] = [float(p.detach().double().sum()) for p in net.parameters()]  # [added]
  report["device"] = str(next(net.parameters()).device)  # [added]
  with open(f"rank{mv.rank}.json", "w") as f:  # [added]
      json.dump(report, f)
if __name__ == '__main__':
  nworld = int(sys.argv[1]) if len(sys.argv) > 1 else 2  # [added]
  is_distributed = nworld > 1  # [added] the brochure's pseudo-code condition
  if is_distributed:  # [changed] if is distributed:
      mv = neb.cockpit.Multiverse(launch, nworld) ##  # [changed] 4
      mv() # _______[6]
  else:  # [changed] indentation
    neb.cockpit.Multiverse(launch, 1)()  # [changed] launch(): mv=None has no init()
