"""Train the trachea-crop tube detector: python train.py EPOCHS (reads /tmp/ett_*.npz)."""
import time, sys
import numpy as np
import torch
from torch import nn
torch.set_num_threads(2)
torch.manual_seed(0)
tr, va = np.load("/tmp/ett_train.npz"), np.load("/tmp/ett_val.npz")

def prep(X):
    X = torch.tensor(X)[:, None]
    # background flattening per image: subtract a 15-px box mean (tube ~ 2-10 px wide)
    mean = nn.functional.avg_pool2d(X, 15, stride=1, padding=7, count_include_pad=False)
    hp = X - mean
    hp = hp / (hp.flatten(1).std(1)[:, None, None, None] + 1e-6)
    return hp
Xt, yt = prep(tr["X"]), torch.tensor(tr["y"], dtype=torch.float32)
Xv, yv = prep(va["X"]), va["y"]

def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
net = nn.Sequential(block(1, 12), block(12, 16), block(16, 24), block(24, 32),
                    nn.Conv2d(32, 1, 1))  # per-cell logit, max-pooled: "a tube somewhere"
def forward(x):
    return net(x).amax(dim=(1, 2, 3))  # the most tube-like cell
opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 12
steps = epochs * (len(Xt) // 32)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
from sklearn.metrics import roc_auc_score
t0 = time.time()
for ep in range(epochs):
    net.train()
    perm = torch.randperm(len(Xt))
    for k in range(0, len(Xt) - 31, 32):
        idx = perm[k:k+32]
        x = Xt[idx]
        if np.random.rand() < 0.5: x = x.flip(3)
        # random shift
        dy, dx = np.random.randint(-12, 13, 2)
        x = torch.roll(x, (int(dy), int(dx)), (2, 3))
        loss = nn.functional.binary_cross_entropy_with_logits(forward(x), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    net.eval()
    with torch.no_grad():
        pv = torch.cat([forward(Xv[i:i+64]) for i in range(0, len(Xv), 64)]).numpy()
        pt = torch.cat([forward(Xt[i:i+64]) for i in range(0, 400, 64)]).numpy()
    print(f"epoch {ep+1} loss {loss.item():.3f} train-auc {roc_auc_score(tr['y'][:len(pt)], pt):.3f} val-auc {roc_auc_score(yv, pv):.3f} {time.time()-t0:.0f}s", flush=True)
torch.save(net.state_dict(), "/tmp/ett_net.pt")
