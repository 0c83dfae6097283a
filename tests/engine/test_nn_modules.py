"""engine.nn modules: registration, modes, state, and a training loop that equals torch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine


def _mlp(backend):
    nn = backend.nn
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _copy_weights(src: torch.nn.Module, dst: engine.nn.Module):
    dst.load_state_dict({name: engine.tensor(p.detach().numpy()) for name, p in src.state_dict().items()})


@pytest.mark.parametrize("optimizer, options, loss_name", [
    ("SGD", dict(lr=0.1, momentum=0.9), "CrossEntropyLoss"),
    ("Adam", dict(lr=0.01), "CrossEntropyLoss"),
    ("SGD", dict(lr=0.05), "MSELoss"),
])
def test_training_a_small_network_gives_torch_losses(optimizer, options, loss_name):
    torch.manual_seed(0)
    reference = _mlp(torch)
    model = _mlp(engine)
    _copy_weights(reference, model)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((16, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 16)
    targets = {"CrossEntropyLoss": labels, "MSELoss": np.eye(3, dtype=np.float32)[labels]}[loss_name]
    losses = {}
    for backend, net in ((torch, reference), (engine, model)):
        opt = getattr(backend.optim, optimizer)(net.parameters(), **options)
        loss_fn = getattr(backend.nn, loss_name)()
        x, y = backend.tensor(xs), backend.tensor(targets)
        history = []
        for _ in range(10):
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            history.append(loss.item())
        losses[backend.__name__] = history
    np.testing.assert_allclose(losses["engine"], losses["torch"], rtol=1.3e-6 * 10, atol=1e-5)


def test_module_registers_parameters_and_submodules_like_torch():
    for backend in (engine, torch):
        model = _mlp(backend)
        names = [name for name, _ in model.named_parameters()]
        assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert all(p.requires_grad and p.is_leaf for p in model.parameters())
        assert model.training and not model.eval().training and not model[0].training
        assert list(model.state_dict()) == names
    assert repr(_mlp(engine)) == repr(_mlp(torch))
    assert repr(engine.nn.Parameter(engine.tensor([1.0, 2.0]))) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))


def test_linear_initialization_is_uniform_within_torchs_bound():
    engine.manual_seed(1)
    layer = engine.nn.Linear(16, 32)
    bound = 1 / 4
    w = layer.weight.detach().numpy()
    assert w.shape == (32, 16) and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    engine.manual_seed(1)
    assert np.array_equal(engine.nn.Linear(16, 32).weight.detach().numpy(), w)


def test_module_zero_grad_clears_every_parameter():
    model = _mlp(engine)
    model(engine.tensor(np.ones((2, 4), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_manual_seed_reproduces_every_random_op():
    def draw():
        engine.manual_seed(7)
        return (engine.rand(3).tolist(), engine.randn(2).tolist(),
                engine.nn.functional.dropout(engine.tensor([1.0] * 8), 0.5).tolist(),
                engine.nn.Linear(2, 2).weight.tolist())
    assert draw() == draw()
