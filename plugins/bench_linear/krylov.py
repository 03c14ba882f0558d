"""linear.minres, linear.gmres, linear.bicgstab: Krylov solvers beyond CG, in torch.

- MINRES (Paige & Saunders, "Solution of Sparse Indefinite Systems of Linear Equations", 1975):
  symmetric A, possibly indefinite. Lanczos three-term recurrence; x_k minimizes ‖b − A x‖ over
  x0 + K_k(A, r0), kept up to date with Givens rotations and a three-term update of directions.
  One matvec per iteration, as scipy.sparse.linalg.minres.
- GMRES(m) (Saad & Schultz, "GMRES: A Generalized Minimal Residual Algorithm for Solving
  Nonsymmetric Linear Systems", 1986): Arnoldi with classical Gram–Schmidt applied twice, Givens rotations on the
  Hessenberg matrix, restart after m steps. An "iteration" here is one Arnoldi step (one matvec);
  x is formed after every step so the runner can measure it (O(k n) extra per step). scipy's
  gmres reports x only once per restart cycle: see reference.py.
- BiCGSTAB (van der Vorst, "Bi-CGSTAB: A Fast and Smoothly Converging Variant of Bi-CG for the
  Solution of Nonsymmetric Linear Systems", 1992): two matvecs per iteration.

    BiCGSTAB:  ρ = r̂ᵀr,  β = (ρ/ρ_old)(α/ω),  p = r + β (p − ω v),  v = A p,  α = ρ / r̂ᵀv,
               s = r − α v,  t = A s,  ω = tᵀs / tᵀt,  x += α p + ω s,  r = s − ω t
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch

from .base import Solver, SolverError


class MINRES(Solver):
    """Unpreconditioned MINRES for symmetric (possibly indefinite) A."""

    name = "linear.minres"
    needs_symmetric = True

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each iteration."""
        stop = self.threshold(b)
        x = x0.clone()
        r1 = b - self.matvec(x)
        beta1 = float(torch.linalg.vector_norm(r1))
        if beta1 == 0.0:
            callback(x)
            return x
        y, r2 = r1, r1
        oldb, beta, dbar, epsln, phibar = 0.0, beta1, 0.0, 0.0, beta1
        cs, sn = -1.0, 0.0
        w = torch.zeros_like(b)
        w2 = torch.zeros_like(b)
        eps = torch.finfo(b.dtype).eps
        for itn in range(1, maxiter + 1):
            v = y / beta
            y = self.matvec(v)
            if itn >= 2:
                y = y - (beta / oldb) * r1
            alfa = float(torch.dot(v, y))
            y = y - (alfa / beta) * r2
            r1, r2 = r2, y
            oldb, beta = beta, float(torch.linalg.vector_norm(r2))
            oldeps = epsln
            delta = cs * dbar + sn * alfa
            gbar = sn * dbar - cs * alfa
            epsln = sn * beta
            dbar = -cs * beta
            gamma = max(math.hypot(gbar, beta), eps)
            cs, sn = gbar / gamma, beta / gamma
            phi, phibar = cs * phibar, sn * phibar
            w1, w2 = w2, w
            w = (v - oldeps * w1 - delta * w2) / gamma
            x = x + phi * w
            callback(x)
            if beta == 0.0 or (stop and phibar <= stop):
                return x  # invariant subspace reached: x is the solution / own tolerance met
        return x


class GMRES(Solver):
    """Restarted GMRES(m), unpreconditioned."""

    name = "linear.gmres"

    def __init__(self, restart: int = 30, operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        if restart < 1:
            raise ValueError("restart must be at least 1")
        self.restart = int(restart)

    def solve(self, b, x0, maxiter, callback):
        """Iterate (one Arnoldi step each) from x0, calling callback(x) after each step."""
        stop = self.threshold(b)
        m = self.restart
        x = x0.clone()
        done = 0
        while done < maxiter:
            r = b - self.matvec(x)
            beta = float(torch.linalg.vector_norm(r))
            if beta == 0.0:
                callback(x)
                return x
            V = torch.zeros((m + 1, b.shape[0]), dtype=b.dtype, device=b.device)
            V[0] = r / beta
            H = np.zeros((m + 1, m))  # the small Hessenberg problem lives on the host
            cs, sn = np.zeros(m), np.zeros(m)
            g = np.zeros(m + 1)
            g[0] = beta
            x_start = x
            for j in range(min(m, maxiter - done)):
                w = self.matvec(V[j])
                basis = V[: j + 1]
                h = basis @ w  # classical Gram–Schmidt, twice (CGS2): as stable as modified G–S
                w = w - h @ basis
                h2 = basis @ w
                w = w - h2 @ basis
                H[: j + 1, j] = (h + h2).cpu().double().numpy()
                hn = float(torch.linalg.vector_norm(w))
                H[j + 1, j] = hn
                breakdown = hn <= 1e-14 * beta
                if not breakdown:
                    V[j + 1] = w / hn
                for i in range(j):  # previous rotations on column j
                    t = cs[i] * H[i, j] + sn[i] * H[i + 1, j]
                    H[i + 1, j] = -sn[i] * H[i, j] + cs[i] * H[i + 1, j]
                    H[i, j] = t
                denom = math.hypot(H[j, j], H[j + 1, j])
                if denom == 0.0:
                    raise SolverError("linear.gmres breakdown: zero column in the Hessenberg matrix "
                                      "(is the matrix singular?)")
                cs[j], sn[j] = H[j, j] / denom, H[j + 1, j] / denom
                H[j, j], H[j + 1, j] = denom, 0.0
                g[j + 1] = -sn[j] * g[j]
                g[j] = cs[j] * g[j]
                k = j + 1
                ycoef = scipy.linalg.solve_triangular(H[:k, :k], g[:k])
                x = x_start + torch.from_numpy(ycoef).to(b) @ V[:k]
                done += 1
                callback(x)
                if breakdown or (stop and abs(g[j + 1]) <= stop):
                    return x
        return x


class BiCGSTAB(Solver):
    """Unpreconditioned BiCGSTAB for general (nonsymmetric) A."""

    name = "linear.bicgstab"

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each iteration (two matvecs each)."""
        stop = self.threshold(b)
        x = x0.clone()
        r = b - self.matvec(x)
        rhat = r.clone()
        rho = alpha = omega = 1.0
        v = torch.zeros_like(b)
        p = torch.zeros_like(b)
        for _ in range(maxiter):
            rho_new = float(torch.dot(rhat, r))
            if rho_new == 0.0:
                if float(torch.linalg.vector_norm(r)) == 0.0:
                    callback(x)
                    return x
                raise SolverError("linear.bicgstab breakdown: r̂ᵀr = 0")
            beta = (rho_new / rho) * (alpha / omega)
            p = r + beta * (p - omega * v)
            v = self.matvec(p)
            rv = float(torch.dot(rhat, v))
            if rv == 0.0:
                raise SolverError("linear.bicgstab breakdown: r̂ᵀAp = 0")
            alpha = rho_new / rv
            s = r - alpha * v
            t = self.matvec(s)
            tt = float(torch.dot(t, t))
            omega = float(torch.dot(t, s)) / tt if tt > 0 else 0.0
            x = x + alpha * p + omega * s
            r = s - omega * t
            rho = rho_new
            callback(x)
            if omega == 0.0:
                if float(torch.linalg.vector_norm(r)) == 0.0:
                    return x
                raise SolverError("linear.bicgstab breakdown: ω = 0")
            if stop and float(torch.linalg.vector_norm(r)) <= stop:
                return x
        return x
