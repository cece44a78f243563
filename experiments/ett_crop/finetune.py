"""Two-three more epochs with central-line negatives; reads train.py's network and data."""
import numpy as np, torch, sys, time
from torch import nn
from sklearn.metrics import roc_auc_score
sys.argv = ["x", "0"]
exec(open(__file__.replace("finetune.py", "train.py")).read().split("opt = torch.optim")[0])
a, b = np.load("/tmp/ett_train.npz"), np.load("/tmp/ett_cvc_train.npz")
Xt = torch.cat([prep(a["X"]), prep(b["X"])]); yt = torch.tensor(np.concatenate([a["y"], b["y"]]), dtype=torch.float32)
ev = np.load("/tmp/ett_cvc.npz"); Xe, ye = prep(ev["X"]), ev["y"]
net.load_state_dict(torch.load("/tmp/ett_net.pt"))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
t0 = time.time()
for ep in range(3):
    net.train(); perm = torch.randperm(len(Xt))
    for k in range(0, len(Xt) - 31, 32):
        idx = perm[k:k+32]; x = Xt[idx]
        if np.random.rand() < 0.5: x = x.flip(3)
        dy, dx = np.random.randint(-12, 13, 2); x = torch.roll(x, (int(dy), int(dx)), (2, 3))
        loss = nn.functional.binary_cross_entropy_with_logits(forward(x), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        pe = torch.cat([forward(Xe[i:i+50]) for i in range(0, len(Xe), 50)]).numpy()
        pv = torch.cat([forward(Xv[i:i+50]) for i in range(0, len(Xv), 50)]).numpy()
    print(f"epoch {ep+1} loss {loss.item():.3f} ETT-vs-CVC val {roc_auc_score(ye, pe):.3f} ETT-vs-normal val {roc_auc_score(yv, pv):.3f} {time.time()-t0:.0f}s", flush=True)
