"""layer(x) runs whatever `forward` the layer has, and backward accepts the forward's own input.

As PyTorch's Module.__call__, Dropout.__call__ looks up ``self.forward`` on every call, so a
mixin's forward, a forward assigned to the class after it was made, and one assigned to an
instance (hooks, mock.patch.object) all run.  backward checks grad against the shape of the
memory the forward's mask covered, not a shape a subclass reports through Python.
"""
import numpy as np

import cdrop

X = np.ones(16, dtype=np.float32)


class _Mixin:
    def forward(self, x):
        return "mixin forward"


def test_forward_of_a_mixin_runs():
    class Layer(_Mixin, cdrop.Dropout):
        pass

    assert Layer(0.5, seed=0).forward(X) == "mixin forward"
    assert Layer(0.5, seed=0)(X) == "mixin forward"


def test_forward_assigned_to_the_class_later_runs():
    class Layer(cdrop.Dropout):
        pass

    Layer.forward = lambda self, x: "patched forward"
    assert Layer(0.5, seed=0)(X) == "patched forward"


def test_forward_assigned_to_an_instance_runs():
    layer = cdrop.Dropout(0.5, seed=0)
    layer.forward = lambda x: "instance forward"
    assert layer(X) == "instance forward"


class _ShapeLiar(np.ndarray):
    """Reports a shape that is not its buffer's (the kind of subclass _checks.base guards)."""

    @property
    def shape(self):
        return (1,)


def test_backward_after_a_forward_of_a_subclass_that_overrides_shape():
    layer = cdrop.Dropout(0.5, seed=1)
    x = np.ones(10).view(_ShapeLiar)
    y = layer(x)
    # grad of the buffer's real shape, (10,): what dropout(x) itself wrote
    g = layer.backward(np.ones(10))
    assert np.array_equal(g, np.asarray(y).view(np.ndarray))
