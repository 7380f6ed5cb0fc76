"""Accuracy of the Monte Carlo engine against the closed forms, d = 3072, 1e5 draws, 200 p_A in
[0.55, 0.9999], default direction search: the table in README.md. Run: python scripts/accuracy_table.py"""
import time, numpy as np, unicr, math
from scipy.stats import norm
d=3072; a=math.sqrt(3)
pa=np.linspace(0.55,0.9999,200)
cases = [("gaussian",1,norm.ppf(pa)),("gaussian",2,norm.ppf(pa)),("gaussian",math.inf,norm.ppf(pa)/math.sqrt(d)),
 ("laplace",1,-(1/math.sqrt(2))*np.log(2*(1-pa))),("uniform",1,2*a*(pa-0.5)),("uniform",math.inf,2*a*-np.expm1(np.log(1.5-pa)/d))]
print("| noise | norm | median rel. error | max rel. error | closed form inside band | median band half-width | found direction | s (200 p_A, search incl.) |")
print("|---|---|---|---|---|---|---|---|")
for name,p,ref in cases:
    t=time.time(); df = unicr.radius_curve(unicr.noise(name, dim=d), p, p_a=pa, seed=0); dt=time.time()-t
    rel=np.abs(df.radius/ref-1); cov=((df.lower<=ref)&(ref<=df.upper)).mean()
    hw=np.median((df.upper-df.lower)/2/df.radius)
    print(f"| {name} | {unicr.directions.norm_label(p)} | {np.median(rel):.2%} | {rel.max():.2%} | {cov:.1%} | {hw:.2%} | {', '.join(sorted(df.direction.unique()))} | {dt:.1f} |", flush=True)
