"""The tape and the reverse sweep: graph shapes that break naive engines, and the tape's life
cycle."""

import threading

import pytest
import torch

import tapegrad as tg

from helpers import check_against_torch, randn


def leaf(values, dtype=torch.float64):
    return tg.tensor(values, requires_grad=True, dtype=dtype)


# --- graph shapes ------------------------------------------------------------------


def test_x_times_x_accumulates():
    # the classic bug: a backward that assigns instead of adding gives x, not 2x
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, -4.0, 6.0]


def test_tensor_used_twice_by_one_op_matches_torch():
    check_against_torch(lambda x: (x * x + x / (x * x + 1)) @ x, randn((3,), 0))
    check_against_torch(lambda a: a @ a, randn((3, 3), 1))


def test_fan_out_matches_torch():
    # one tensor feeding several ops, whose results meet again further on
    def fn(x, w):
        h = x @ w
        a, b, c = h.tanh(), h.sigmoid() * 2, h.exp().mean(0)
        return (a * b).sum() + (c * h).sum() + h.relu().sum()

    check_against_torch(fn, randn((4, 3), 0), randn((3, 5), 1))


def test_fan_out_of_an_intermediate_counts_every_use():
    x = leaf([2.0])
    y = x * 3  # dy/dx = 3
    loss = y + y * y + y.exp()  # dloss/dy = 1 + 2y + e^y
    loss.sum().backward()
    y0 = 6.0
    assert x.grad.item() == pytest.approx(3 * (1 + 2 * y0 + torch.tensor(y0).exp().item()))


def test_branch_that_does_not_reach_the_loss():
    x, w, unused = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    dead = (x * unused).exp()  # recorded, but the loss does not use it
    side = w.tanh() * 2  # another dead end, from a leaf the loss does use
    loss = (x * w).sum()
    loss.backward()
    assert x.grad.tolist() == [3.0, 4.0]
    assert w.grad.tolist() == [1.0, 2.0]
    assert unused.grad is None  # no gradient at all, not zeros
    assert dead.requires_grad and side.requires_grad
    dead.sum().backward()  # the dead branch still sweeps on its own afterwards
    assert unused.grad is not None and x.grad is not None


def test_chain_of_200000_nodes_has_no_depth_limit():
    # y = x * c * c * ... (200,000 times): dy/dx = c^200000, no recursion anywhere
    n, c = 200_000, 1.000001
    x = leaf([0.5])
    y = x
    for _ in range(n):
        y = y * c
    assert len(y.tape) == n
    y.sum().backward()
    assert x.grad.item() == pytest.approx(c**n, rel=1e-9)
    del y  # freeing a deep tape must not recurse either


def test_deep_chain_through_several_op_kinds():
    n = 20_000
    x = leaf([0.3, -0.2])
    y = x
    for i in range(n):
        y = (y + 0.0) * 1.0 if i % 2 else (y - 0.0) / 1.0
    y = y.sum()
    assert len(y.tape) == 2 * n + 1
    y.backward()
    assert x.grad.tolist() == [1.0, 1.0]


# --- gradients across sweeps ----------------------------------------------------------


def test_leaf_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [3.0 + 2.0, 3.0 + 4.0]
    x.grad = None  # what zero_grad does
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_intermediate_gradients_are_freed_unless_retained():
    x = leaf([1.0, 2.0])
    h = x * 2
    kept = h.exp()
    kept.retain_grad()
    loss = (kept * h).sum()
    loss.backward()
    assert h.grad is None  # freed as the sweep passed it
    h_ = torch.tensor([2.0, 4.0], dtype=torch.float64)
    assert torch.allclose(kept.grad, h_)  # dloss/dkept = h
    assert all(node._gathered is None for node in loss.tape)  # nothing left half-gathered


def test_retain_grad_on_a_leaf_is_harmless():
    x = leaf([1.0])
    x.retain_grad()
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0]


def test_keep_grads_keeps_every_node_gradient_like_torch_retain_grad():
    values = randn((3, 2), 0)
    x = tg.Tensor(values.clone(), requires_grad=True)
    h = x.tanh()
    z = h * x
    loss = z.sum()
    loss.backward(keep_grads=True)

    r = values.clone().requires_grad_()
    rh = r.tanh()
    rz = rh * r
    rloss = rz.sum()
    for t in (rh, rz, rloss):
        t.retain_grad()
    rloss.backward()
    torch.testing.assert_close(h.grad, rh.grad)
    torch.testing.assert_close(z.grad, rz.grad)
    torch.testing.assert_close(loss.grad, rloss.grad)
    assert all(node.grad is not None for node in loss.tape)


# --- retain_graph, release, and reading a swept tape -----------------------------------


def test_retain_graph_allows_a_second_sweep():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.clone()
    y.backward()
    torch.testing.assert_close(x.grad, 2 * first)


def test_second_sweep_without_retain_graph_says_how_to_fix():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    before = x.grad.clone()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()
    assert torch.equal(x.grad, before)  # the failed sweep changed nothing


def test_released_tape_stays_readable():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    w = leaf([[0.5], [-1.0]])
    with tg.Tape() as tape:
        y = (x @ w).tanh().sum()
    y.backward()
    assert len(tape) == 3
    assert [node.name for node in tape] == ["MatMul", "Tanh", "Sum"]
    assert [tuple(node.shape) for node in tape] == [(2, 1), (2, 1), ()]
    assert [node.released for node in tape] == [True, True, False]  # Sum saved nothing
    text = str(tape)
    assert "Tape of 3 nodes" in text and "MatMul" in text and "(released)" in text
    assert tape[0].value is not None  # explicit tapes keep the outputs for printing


def test_non_scalar_backward_needs_a_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad="):
        y.backward()
    assert x.grad is None


def test_backward_with_grad_on_a_non_scalar_matches_torch():
    values = randn((2, 3), 0)
    seed = randn((3, 3), 1)
    x = tg.Tensor(values.clone(), requires_grad=True)
    (x.T @ x).backward(seed)
    r = values.clone().requires_grad_()
    (r.T @ r).backward(seed)
    torch.testing.assert_close(x.grad, r.grad)
    y = tg.Tensor(values.clone(), requires_grad=True)
    (y * 2).backward(tg.tensor(seed[:2]))  # a tapegrad tensor as grad works too
    torch.testing.assert_close(y.grad, 2 * seed[:2])


def test_backward_on_a_tensor_that_needs_no_grad_raises():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (tg.tensor([1.0]) * 2).sum().backward()


# --- what records -------------------------------------------------------------------------


def test_no_grad_context_records_nothing():
    x = leaf([1.0, 2.0])
    with tg.Tape() as tape:
        with tg.no_grad():
            y = (x * 2).exp().sum()
            assert not tg.is_grad_enabled()
        assert tg.is_grad_enabled()
    assert len(tape) == 0
    assert not y.requires_grad and y.node is None and y.tape is None


def test_no_grad_decorator_records_nothing():
    @tg.no_grad()
    def evaluate(t):
        return (t * t).sum()

    x = leaf([1.0, 2.0])
    y = evaluate(x)
    assert not y.requires_grad and y.tape is None
    assert tg.is_grad_enabled()
    assert (x * x).sum().requires_grad  # recording is back on afterwards


def test_no_grad_restores_recording_after_an_error():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            _ = 1 / 0
    assert tg.is_grad_enabled()


def test_ops_whose_inputs_need_no_grad_record_nothing():
    a = tg.tensor([1.0, 2.0])
    with tg.Tape() as tape:
        b = (a * 2 + a).exp() @ a
    assert len(tape) == 0
    assert not b.requires_grad and b.node is None and b.tape is None


def test_with_tape_records_into_that_tape():
    x = leaf([1.0, 2.0])
    with tg.Tape() as tape:
        h = x * 2
        y = h.sum()
    assert y.tape is tape and h.tape is tape
    assert list(tape) == [h.node, y.node]
    assert [node.index for node in tape] == [0, 1]
    z = y * 3  # after the block: the tape of its input
    assert z.tape is tape and len(tape) == 3


def test_default_tapes_are_per_computation():
    x = leaf([1.0, 2.0])
    y1 = (x * 2).sum()
    y2 = (x * 3).sum()
    assert isinstance(y1.tape, tg.Tape) and isinstance(y2.tape, tg.Tape)
    assert y1.tape is not y2.tape
    assert len(y1.tape) == 2 and y1.tape[-1] is y1.node
    assert y1.tape.keep_values is False and y1.node.value is None
    assert x.tape is None and x.node is None  # leaves are on no tape


def _assert_topological(tape):
    """Positions match indices, and every node comes after the nodes it reads."""
    assert [node.index for node in tape] == list(range(len(tape)))
    for node in tape:
        assert tape[node.index] is node
        for item in node.inputs:
            if isinstance(item, tg.Node):
                assert item.index < node.index


def test_joining_two_computations_appends_the_smaller_to_the_larger():
    values_a, values_b = randn((3,), 0), randn((3,), 1)
    a, b = (
        tg.Tensor(values_a.clone(), requires_grad=True),
        tg.Tensor(values_b.clone(), requires_grad=True),
    )
    p = a * 2  # tape 1: one node
    q = b.exp()  # tape 2: three nodes, recorded after p
    q = q * q
    q = q.tanh()
    r = p.sigmoid()  # tape 1 grows after tape 2 started: they interleave in time
    assert p.tape is r.tape and p.tape is not q.tape
    loss = (r * q).sum()  # joins the two computations
    tape = loss.tape
    assert p.tape is tape and q.tape is tape and len(tape) == 7
    # tape 2 was the larger: tape 1's nodes follow it, each computation in its own order
    assert [node.name for node in tape] == ["Exp", "Mul", "Tanh", "Mul", "Sigmoid", "Mul", "Sum"]
    _assert_topological(tape)
    loss.backward()

    ra, rb = values_a.clone().requires_grad_(), values_b.clone().requires_grad_()
    rq = rb.exp()
    rq = (rq * rq).tanh()
    ((ra * 2).sigmoid() * rq).sum().backward()
    torch.testing.assert_close(a.grad, ra.grad)
    torch.testing.assert_close(b.grad, rb.grad)


def test_a_block_that_reads_an_outside_computation_keeps_only_its_own_nodes():
    x = leaf([1.0, 2.0])
    outside = x * 2  # on its own computation tape
    with tg.Tape() as tape:
        y = (outside + x).sum()
    assert [node.name for node in tape] == ["Add", "Sum"]  # what was recorded in the block
    assert tape.is_record and y.tape is not tape
    assert outside.tape is y.tape and [node.name for node in y.tape] == ["Mul", "Add", "Sum"]
    assert [node.index for node in tape] == [1, 2]  # their numbers on y.tape
    _assert_topological(y.tape)
    y.backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_a_block_tape_keeps_its_nodes_when_a_bigger_tape_joins_it():
    # the user holds `tape`: a later op that meets a longer default tape must not empty it
    x = leaf([1.0, 2.0])
    with tg.Tape() as tape:
        y = x * 2
    longer = x
    for _ in range(5):
        longer = longer * 1.5  # a default tape of 5 nodes
    z = (y + longer).sum()
    assert list(tape) == [y.node] and tape.is_record
    assert z.tape is y.tape and longer.tape is z.tape and len(z.tape) == 8
    _assert_topological(z.tape)
    z.backward()
    assert x.grad.tolist() == [2.0 + 1.5**5] * 2


def test_nested_blocks_each_keep_every_node_recorded_inside_them():
    # the example: this hung forever (each tape forwarded to the other)
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as outer:
        a = x * 2
        with tg.Tape() as inner:
            b = a * 3
        c = b + a
    c.sum().backward()
    assert x.grad.tolist() == [8.0, 8.0]
    assert list(outer) == [a.node, b.node, c.node]
    assert list(inner) == [b.node]
    assert [node.index for node in outer] == [0, 1, 2] and inner[0].index == 1
    assert "%1 = Mul(%0, 3)" in str(inner)


def test_sibling_blocks_that_read_each_other():
    x = leaf([1.0, -1.0])
    with tg.Tape() as first:
        a = x.exp()
    with tg.Tape() as second:
        b = a * x
    with tg.Tape() as third:
        c = (b + a).sum()
    assert list(first) == [a.node] and list(second) == [b.node]
    assert [n.name for n in third] == ["Add", "Sum"]
    for t in (a, b, c):
        assert t.tape is c.tape
    _assert_topological(c.tape)
    c.backward()
    torch.testing.assert_close(x.grad, (x.data.exp() * (x.data + 2)))


def test_a_block_reentered_keeps_both_blocks_and_refuses_nesting_itself():
    x = leaf([1.0])
    tape = tg.Tape()
    with tape:
        a = x * 2
    b = a + 1  # after the block: grows with its computation
    with tape:
        c = b * 3
        with pytest.raises(RuntimeError, match="already recording"):
            with tape:
                pass
    assert [n.name for n in tape] == ["Mul", "Add", "Mul"]
    c.sum().backward()
    assert x.grad.tolist() == [6.0]


def test_a_computation_tape_cannot_be_entered():
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="new Tape"):
        with y.tape:
            pass


def test_joins_move_each_node_at_most_log2_n_times():
    # a worst case for "move the newer tape": k chains joined one by one into a growing sum
    moves = {"count": 0}
    original = tg.tape.join

    def counting(a, b):
        a_, b_ = tg.tape.resolve(a), tg.tape.resolve(b)
        moves["count"] += min(len(a_.nodes), len(b_.nodes))
        return original(a, b)

    x = leaf([1.0])
    chains = []
    for _chain in range(64):
        h = x
        for _ in range(16):
            h = h * 1.0
        chains.append(h)
    import tapegrad.function as function

    function.join = counting
    try:
        total = chains[0]
        for h in chains[1:]:
            total = total + h
    finally:
        function.join = original
    n = len(total.tape)
    assert n == 64 * 16 + 63
    assert moves["count"] <= n * 7  # log2(1087) < 11; smaller-into-larger is far below
    _assert_topological(total.tape)


def test_forwarding_links_never_cycle_and_are_shortened():
    x = leaf([1.0])
    pieces = [x * 1.0 for _ in range(50)]
    tapes = [p.tape for p in pieces]
    total = pieces[0]
    for p in pieces[1:]:
        total = total + p
    root = total.tape
    for t in tapes:
        seen = set()
        link = t
        while link._merged_into is not None:
            assert id(link) not in seen
            seen.add(id(link))
            link = link._merged_into
        assert link is root
        assert tg.tape.resolve(t) is root
        assert t._merged_into in (None, root)  # shortened by the lookup


def test_tapes_are_per_thread():
    entered, done = threading.Event(), threading.Event()
    result = {}

    def record_in_thread():
        x = leaf([1.0])
        with tg.Tape() as tape:
            mine = x * 2
            entered.set()
            done.wait(5)  # keep the block open while the main thread records
            mine = mine + 1
        result["tape"], result["mine"] = tape, mine

    worker = threading.Thread(target=record_in_thread)
    worker.start()
    assert entered.wait(5)
    x = leaf([1.0])
    theirs = (x * 3).sum()  # runs while the other thread is inside its `with Tape()`
    done.set()
    worker.join(5)
    tape = result["tape"]
    assert len(tape) == 2 and result["mine"].tape is tape
    assert theirs.tape is not tape and len(theirs.tape) == 2
    theirs.backward()
    assert x.grad.tolist() == [3.0]


def test_no_grad_is_per_thread():
    inside, done = threading.Event(), threading.Event()

    def hold_no_grad():
        with tg.no_grad():
            inside.set()
            done.wait(5)

    worker = threading.Thread(target=hold_no_grad)
    worker.start()
    assert inside.wait(5)
    recorded = (leaf([1.0]) * 2).requires_grad
    done.set()
    worker.join(5)
    assert recorded


# --- each leaf owns its gradient ----------------------------------------------------------


def _shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_leaf_gradients_do_not_alias_each_other():
    # + passes its gradient straight through, and sum's derivative is a broadcast view:
    # each leaf must still get a gradient of its own, which in-place edits (clipping) can change
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    c, d = leaf([[1.0, 2.0]]), leaf([[3.0, 4.0]])
    ((a + b).sum() + (c.reshape(2) - d.reshape(2)).mean()).backward()
    grads = [a.grad, b.grad, c.grad, d.grad]
    for i, g in enumerate(grads):
        assert g.is_contiguous()
        for other in grads[i + 1 :]:
            assert not _shares_memory(g, other)
    a.grad.mul_(0.5)  # torch users clip gradients in place
    c.grad.zero_()
    assert a.grad.tolist() == [0.5, 0.5] and b.grad.tolist() == [1.0, 1.0]
    assert c.grad.tolist() == [[0.0, 0.0]] and d.grad.tolist() == [[-0.5, -0.5]]


def test_leaf_gradient_does_not_alias_the_callers_grad_or_a_retained_one():
    x, z = leaf([1.0, 2.0]), leaf([1.0, 2.0])
    seed = torch.ones(2, dtype=torch.float64)
    y = x + 0.0
    y.retain_grad()
    y.backward(seed)
    z.backward(seed)  # a leaf as the root: its gradient is the seed itself
    seed.mul_(10)  # the caller reuses its tensor
    assert x.grad.tolist() == [1.0, 1.0] and z.grad.tolist() == [1.0, 1.0]
    x.grad.add_(1)
    assert y.grad.tolist() == [1.0, 1.0]


def test_the_watched_flag_follows_blocks_anomaly_and_create_graph_sweeps():
    """`_state.watched` (the one flag recording reads) is set exactly while a block, anomaly
    mode or a create_graph sweep is on, also when they nest or end with an error, per thread."""
    import threading

    from tapegrad.tape import _state

    def expected():
        return bool(_state.blocks) or _state.deriving is not None or _state.anomaly

    seen = []

    def look(x=None):
        seen.append((_state.watched, expected()))
        return x

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    look()
    with tg.Tape():
        look()
        with tg.detect_anomaly():
            look()
            with tg.Tape():
                look()
            look()
        look()
    look()
    with pytest.raises(ValueError), tg.Tape(), tg.detect_anomaly():
        raise ValueError("leave both blocks with an error")
    look()
    y = (x * x).sum()
    (g,) = tg.grad(y, x, create_graph=True)
    look()
    g.register_hook(look)  # runs inside the second sweep: deriving is set there
    z = (g * g).sum()
    z.backward(create_graph=True)
    look()
    assert all(flag == want for flag, want in seen), seen
    assert [flag for flag, _ in seen] == [False, True, True, True, True, True, False] + [
        False,
        False,
        True,
        False,
    ]

    # per thread: a block open here does not mark another thread as watched
    other = []
    with tg.Tape():
        thread = threading.Thread(target=lambda: other.append(_state.watched))
        thread.start()
        thread.join()
    assert other == [False]
