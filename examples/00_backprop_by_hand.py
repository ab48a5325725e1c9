"""Backprop by hand: a tiny network's gradients derived with the chain rule, step by step,
next to what the autograd engine computes, one backward step at a time.

Run:

    python examples/00_backprop_by_hand.py

The network takes three numbers x, has two tanh hidden units and one output, and is
scored with a squared error against a target y:

    z1 = W1 @ x + b1      (2,)      W1 (2, 3), b1 (2,)
    h  = tanh(z1)         (2,)
    yhat = W2 @ h + b2    (1,)      W2 (1, 2), b2 (1,)
    e  = yhat - y         (1,)
    loss = sum(e^2)       ()

What you see:

1. the weights and the forward pass, in plain NumPy;
2. every gradient derived by hand, in plain NumPy, one chain-rule line at a time (the
   derivation is in this file's ``backprop_by_hand``: read it beside the output);
3. the engine's backward pass driven with ``next()`` over ``loss.backward_steps()``: each
   step's op, shapes, the gradient it received (dout) and the ones it sent to its inputs,
   each beside the hand-derived value; and the full ``explain()`` of the tanh step;
4. a table of hand-derived vs engine gradients for W1, b1, W2, b2 and x, checked with
   np.allclose (the script exits with status 1 if any disagree);
5. ``gradcheck`` (central finite differences in float64) on the same network: passed.

Options: ``--quiet`` prints only parts 4 and 5; ``--dot graph.dot`` also writes the graph
as Graphviz DOT text (render with ``dot -Tpng graph.dot -o graph.png``); ``--seed N``
draws random weights with seed N instead of the written-out ones (the gradients still
agree, whatever the weights); ``--tiny`` is accepted like in the other examples (this one
is always tiny).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tinygrad_llm import GradcheckError, Tensor, gradcheck, to_dot

# The written-out numbers: small enough to follow with a pocket calculator.
X = np.array([1.0, -2.0, 0.5])  # the three input numbers
Y = np.array([0.5])  # the target
W1 = np.array([[0.2, -0.4, 0.1],
               [0.5, 0.3, -0.2]])  # (2, 3): row j holds the weights of hidden unit j
B1 = np.array([0.1, -0.1])
W2 = np.array([[0.7, -0.6]])  # (1, 2)
B2 = np.array([0.05])

PARAMS = ("W1", "b1", "W2", "b2", "x")  # what we want d loss / d ... of


def fmt(a) -> str:
    """A number as 0.1234, a vector as [ 0.1234 -0.5678] (signs aligned)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return f"{a:.4f}"
    return "[" + " ".join(f"{v: .4f}" for v in a) + "]"


def rows(a) -> list[str]:
    """A matrix as one line per row, brackets aligned; anything else as one line."""
    a = np.asarray(a)
    if a.ndim < 2:
        return [fmt(a)]
    body = [fmt(r) for r in a]
    lines = ["[" + body[0]] + [" " + r for r in body[1:]]
    lines[-1] += "]"
    return lines


def columns(*cells, widths: tuple[int, ...], indent: str = "  ") -> str:
    """Print cells side by side; a cell is a string or a list of lines (a matrix)."""
    cells = [c if isinstance(c, list) else [c] for c in cells]
    height = max(len(c) for c in cells)
    out = []
    for i in range(height):
        parts = [(c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths)]
        out.append((indent + "".join(parts)).rstrip())
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# 1 + 2: plain NumPy, forward and backward by hand


def forward_by_hand(w: dict) -> dict:
    """The forward pass, keeping every intermediate value (backward needs them)."""
    v = {}
    v["z1"] = w["W1"] @ w["x"] + w["b1"]  # (2,)
    v["h"] = np.tanh(v["z1"])  # (2,)
    v["yhat"] = w["W2"] @ v["h"] + w["b2"]  # (1,)
    v["e"] = v["yhat"] - w["y"]  # (1,)
    v["loss"] = np.sum(v["e"] ** 2)  # ()
    return v


def backprop_by_hand(w: dict, v: dict) -> tuple[dict, list[tuple]]:
    """Every gradient with the chain rule, from the loss back to the inputs.

    Notation: dq means d loss / d q. Each line multiplies the gradient that arrived from
    above (the "upstream" gradient) by one local derivative. Returns the gradients and, for
    printing, the lines (name, formula, reason, value) in the order they were computed.
    """
    g, lines = {}, []

    def say(name: str, formula: str, why: str, value) -> None:
        g[name] = np.asarray(value, dtype=np.float64)
        lines.append((name, formula, why, g[name]))

    # backprop starts from d loss / d loss = 1
    say("loss", "1", "where backprop starts", 1.0)
    # loss = sum(e^2): each summed term has slope 1, so it gets the upstream gradient as is
    say("e^2", "dloss * 1", "sum: each term's slope is 1", g["loss"] * np.ones_like(v["e"]))
    # square: d(e^2)/de = 2e
    say("e", "de^2 * 2e", "square: d(e^2)/de = 2e", g["e^2"] * 2 * v["e"])
    # e = yhat - y: slope 1 for yhat (y is the target, a constant: no gradient wanted)
    say("yhat", "de * 1", "e = yhat - y", g["e"] * 1.0)
    # yhat = (W2 @ h) + b2: an addition passes the gradient unchanged to both terms
    say("W2@h", "dyhat", "addition passes it on", g["yhat"])
    say("b2", "dyhat", "addition passes it on", g["yhat"])
    # a = W2 @ h, i.e. a_i = sum_j W2[i, j] h_j, so da_i/dW2[i, j] = h_j and da_i/dh_j = W2[i, j]
    say("W2", "outer(dW2@h, h)", "d a_i / d W2[i,j] = h_j", np.outer(g["W2@h"], v["h"]))
    say("h", "W2^T @ dW2@h", "d a_i / d h_j = W2[i,j]", w["W2"].T @ g["W2@h"])
    # h = tanh(z1): tanh'(z) = 1 - tanh(z)^2, and tanh(z1) is h, already computed
    say("z1", "dh * (1 - h^2)", "tanh' = 1 - tanh^2", g["h"] * (1 - v["h"] ** 2))
    # z1 = (W1 @ x) + b1: the same two rules as one layer up
    say("W1@x", "dz1", "addition passes it on", g["z1"])
    say("b1", "dz1", "addition passes it on", g["z1"])
    say("W1", "outer(dW1@x, x)", "d a_i / d W1[i,j] = x_j", np.outer(g["W1@x"], w["x"]))
    say("x", "W1^T @ dW1@x", "d a_i / d x_j = W1[i,j]", w["W1"].T @ g["W1@x"])
    return g, lines


# ---------------------------------------------------------------------------------------
# 3: the same network with the engine


def forward_with_engine(W1, b1, W2, b2, x, y) -> Tensor:
    """The same forward pass with Tensors; every intermediate gets a name for the printout."""
    a1 = W1 @ x
    z1 = a1 + b1
    h = z1.tanh()
    a2 = W2 @ h
    yhat = a2 + b2
    e = yhat - y
    sq = e**2
    loss = sq.sum()
    for t, name in ((a1, "W1@x"), (z1, "z1"), (h, "h"), (a2, "W2@h"), (yhat, "yhat"),
                    (e, "e"), (sq, "e^2"), (loss, "loss")):
        t.name = name
    return loss


def weights(seed: int | None) -> dict:
    if seed is None:
        return {"W1": W1, "b1": B1, "W2": W2, "b2": B2, "x": X, "y": Y}
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(0, 0.5, (2, 3)), "b1": rng.normal(0, 0.5, 2),
            "W2": rng.normal(0, 0.5, (1, 2)), "b2": rng.normal(0, 0.5, 1),
            "x": rng.normal(0, 1.0, 3), "y": rng.normal(0, 1.0, 1)}


def leaves(w: dict) -> dict:
    """float64 Tensors: the five we differentiate, and the target y as a constant."""
    t = {k: Tensor(w[k], requires_grad=True, dtype=np.float64, name=k) for k in PARAMS}
    t["y"] = Tensor(w["y"], dtype=np.float64, name="y")
    return t


def hand_cell(value) -> list[str]:
    lines = rows(value)
    return ["hand: " + lines[0]] + ["      " + r for r in lines[1:]]


def show_step(step, hand: dict) -> None:
    """One backward step: the gradient it got (dout) and sent, each beside the hand value."""
    ins = ", ".join(step.input_names())
    print(f"  [{step.index}] {step.op} -> {step.out.name} {tuple(step.out.shape)}, "
          f"inputs {ins}")
    formula = (step.op_class.__doc__ or "").strip().splitlines()[0]  # the op's math, 1 line
    print(f"      {formula}")
    widths = (16, 28, 0)
    print(columns(f"dout = d{step.out.name}", rows(step.dout),
                  hand_cell(hand[step.out.name]), widths=widths,
                  indent="      "))
    for name, grad in zip(step.input_names(), step.grads):
        if grad is None:
            print(columns(f"d{name}", "-", "(a constant: not needed)", widths=widths,
                          indent="      "))
        else:
            print(columns(f"d{name}", rows(grad), hand_cell(hand[name]),
                          widths=widths, indent="      "))


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Every gradient of a tiny network by the chain rule, beside the engine's.")
    parser.add_argument("--quiet", action="store_true", help="print only the final checks")
    parser.add_argument("--dot", metavar="FILE", help="write the graph as Graphviz DOT text")
    parser.add_argument("--seed", type=int, default=None,
                        help="random weights from this seed instead of the written-out ones")
    parser.add_argument("--tiny", action="store_true", help="accepted; this example is tiny")
    args = parser.parse_args(argv)
    say = (lambda *a, **k: None) if args.quiet else print

    w = weights(args.seed)
    say("Backprop by hand: a 3 -> 2 (tanh) -> 1 network, squared-error loss\n")
    say("The numbers" + (" (written out)" if args.seed is None else f" (seed {args.seed})"))
    for k in ("x", "y", "W1", "b1", "W2", "b2"):
        say(columns(f"{k} =", rows(w[k]), widths=(6, 30)))

    # -- 1. forward, plain NumPy ---------------------------------------------------------
    v = forward_by_hand(w)
    say("\n1. Forward pass (plain NumPy)")
    say(f"  z1   = W1 @ x + b1 = {fmt(v['z1'])}")
    say(f"  h    = tanh(z1)    = {fmt(v['h'])}")
    say(f"  yhat = W2 @ h + b2 = {fmt(v['yhat'])}")
    say(f"  e    = yhat - y    = {fmt(v['e'])}")
    say(f"  loss = sum(e^2)    = {v['loss']:.6f}")

    # -- 2. backward by hand -------------------------------------------------------------
    hand, lines = backprop_by_hand(w, v)
    say("\n2. Backward pass by hand: dq means d loss / d q; each line multiplies the gradient")
    say("   from the line above by one local slope (the chain rule)")
    for name, formula, why, value in lines:
        say(columns(f"d{name}", f"= {formula}", rows(value), why, widths=(8, 19, 30, 26)))

    # -- 3. the engine, one step at a time ------------------------------------------------
    t = leaves(w)
    loss = forward_with_engine(t["W1"], t["b1"], t["W2"], t["b2"], t["x"], t["y"])
    if args.dot:
        with open(args.dot, "w") as f:
            f.write(to_dot(loss, values=True))  # before backward(), which frees the graph
        say(f"\n(wrote the graph to {args.dot}; render: dot -Tpng {args.dot} -o graph.png)")
    say(f"\n3. The engine: loss = {loss.item():.6f}. Now loss.backward_steps(), one next() per")
    say("   op, from the loss back to the leaves (engine value, then the hand value from 2.)")
    steps = loss.backward_steps()
    explained = None
    while True:
        try:
            step = next(steps)
        except StopIteration:
            break
        if not args.quiet:
            show_step(step, hand)
        if step.op == "Tanh":
            explained = step.explain()
    say("\n  What step.explain() says about the tanh step (the op's formula, then values):")
    for line in (explained or "").splitlines():
        say("    " + line)

    # -- 4. hand vs engine ---------------------------------------------------------------
    print("\n4. Hand-derived vs engine gradients")
    print(columns("", "by hand", "engine", "agree", widths=(5, 30, 30, 5)))
    all_agree = True
    for k in PARAMS:
        agree = bool(np.allclose(hand[k], t[k].grad, rtol=1e-10, atol=1e-12))
        all_agree &= agree
        print(columns(k, rows(hand[k]), rows(t[k].grad), "yes" if agree else "NO",
                      widths=(5, 30, 30, 5)))
    if all_agree:
        print("  all 5 gradients agree (np.allclose, rtol=1e-10)")
    else:
        print("  MISMATCH: the engine and the hand derivation disagree")

    # -- 5. gradcheck --------------------------------------------------------------------
    y = Tensor(w["y"], dtype=np.float64)  # a constant inside the checked function

    def net(W1, b1, W2, b2, x):
        return forward_with_engine(W1, b1, W2, b2, x, y)

    try:
        gradcheck(net, [w[k] for k in PARAMS], seed=0)
        print("\n5. gradcheck (central differences, float64) on the same network: passed")
        checked = True
    except GradcheckError as err:
        print(f"\n5. gradcheck (central differences, float64) on the same network: FAILED\n"
              f"  {err}")
        checked = False
    return 0 if all_agree and checked else 1


if __name__ == "__main__":
    sys.exit(main())
