"""convarith.torch: the custom ops against torch.nn.functional, torch.library.opcheck, torch.export and
torch.compile seeing convarith's shapes, and the module swap on a small network.

torch is not installed by CI's python step (the CPU wheel's index is unreachable there and PyPI's torch is
about 3 GB of CUDA wheels, minutes to install): these tests skip without it and run in .ci/gpu.sh, whose Python
has torch."""

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI skips it: ~3 GB / ~6 min from PyPI); "
                                             ".ci/gpu.sh runs these tests on a device whose Python has torch")
if not hasattr(torch.library, "custom_op"):
    pytest.skip(f"convarith.torch needs PyTorch >= 2.4, this is {torch.__version__}", allow_module_level=True)

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convarith.torch as ct  # noqa: E402

GEN = torch.Generator().manual_seed(16)


def rand(*shape, dtype=torch.float32):
    return (torch.rand(*shape, generator=GEN) * 2 - 1).to(dtype)


def close(got, want, tol=1e-5):
    assert got.shape == want.shape
    scale = max(1.0, want.abs().max().item())
    err = (got.double() - want.double()).abs().max().item()
    assert err <= tol * scale, f"max error {err} (scale {scale})"


CONV_CASES = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 9, 11), (4, 3, 3, 3), 1, 1, 1, 1),
    ((1, 4, 10, 7), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
    ((1, 3, 13), (5, 3, 4), 3, 2, 2, 1),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), 2, 1, 1, 1),
    ((1, 8, 8, 8), (8, 1, 3, 3), 1, 1, 1, 8),  # depthwise
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv_matches_torch(xs, ws, stride, padding, dilation, groups):
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[len(xs)]
    close(ct.conv(x, w, b, stride, padding, dilation, groups), fn(x, w, b, stride, padding, dilation, groups))


def test_conv_padding_same_and_channels_last():
    x, w = rand(1, 3, 8, 9), rand(5, 3, 4, 3)
    close(ct.conv(x, w, padding="same"), F.conv2d(x, w, padding="same"))
    xl = x.to(memory_format=torch.channels_last)
    y = ct.conv(xl, w, None, 1, 1)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    close(y, F.conv2d(x, w, None, 1, 1))


@pytest.mark.parametrize("xs,ws,stride,padding,out_pad,groups,dilation", [
    ((1, 4, 5, 5), (4, 3, 3, 3), 2, 1, 1, 1, 1),
    ((2, 4, 3, 4), (4, 2, 4, 4), 2, 1, 0, 2, 1),
    ((1, 2, 7), (2, 3, 3), 3, 0, 2, 1, 1),
    ((1, 2, 4, 4), (2, 2, 3, 3), 1, 0, 1, 1, 2),
])
def test_conv_transpose_matches_torch(xs, ws, stride, padding, out_pad, groups, dilation):
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * groups)
    fn = {3: F.conv_transpose1d, 4: F.conv_transpose2d}[len(xs)]
    close(ct.conv_transpose(x, w, b, stride, padding, out_pad, groups, dilation),
          fn(x, w, b, stride, padding, out_pad, groups, dilation))


@pytest.mark.parametrize("k,s,p,d,ceil", [(3, 2, 1, 1, False), (2, 2, 0, 1, True), (3, 1, 1, 2, False),
                                          ((3, 2), (2, 1), (1, 0), 1, True)])
def test_max_pool_matches_torch(k, s, p, d, ceil):
    x = rand(2, 3, 11, 10)
    close(ct.max_pool(x, k, s, p, d, ceil), F.max_pool2d(x, k, s, p, d, ceil), tol=0)


@pytest.mark.parametrize("k,s,p,ceil,incl", [(3, 2, 1, False, True), (3, 2, 1, True, False), (2, None, 0, True, True),
                                             (3, 2, 1, True, True)])
def test_avg_pool_matches_torch(k, s, p, ceil, incl):
    x = rand(1, 2, 10, 9)
    close(ct.avg_pool(x, k, s, p, ceil, incl), F.avg_pool2d(x, k, s, p, ceil, incl))


def test_invalid_layer_raises_the_librarys_message():
    with pytest.raises(ValueError, match="exceeds padded input"):
        ct.conv(rand(1, 1, 2, 2), rand(1, 1, 5, 5))


def test_opcheck_every_op():
    x, xl = rand(2, 4, 9, 8), rand(2, 4, 9, 8).to(memory_format=torch.channels_last)
    samples = [
        (torch.ops.convarith.conv.default, (x, rand(6, 2, 3, 3), rand(6), [2, 1], [1, 1], [1, 1], 2)),
        (torch.ops.convarith.conv.default, (xl, rand(6, 4, 3, 3), None, [1, 1], [0, 1, 2, 0], [1, 1], 1)),
        (torch.ops.convarith.conv_transpose.default, (x, rand(4, 3, 3, 3), rand(3), [2, 2], [1, 1], [1, 0], 1,
                                                      [1, 1])),
        (torch.ops.convarith.max_pool.default, (x, [3, 3], [2, 2], [1, 1], [1, 1], True)),
        (torch.ops.convarith.max_pool.default, (xl, [2, 2], [2, 2], [0, 0], [1, 1], False)),
        (torch.ops.convarith.avg_pool.default, (x, [3, 2], [2, 2], [1, 0], False, True)),
    ]
    for op, args in samples:
        torch.library.opcheck(op, args)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=False)
        self.up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.reflect = nn.Conv2d(4, 2, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv1(x))))
        return self.reflect(self.avg(self.up(self.conv2(x))))


def test_swap_modules_and_compare():
    torch.manual_seed(0)
    model = Net().eval()
    x = rand(2, 3, 16, 16)
    res = ct.compare(model, x)
    assert res["swapped"] == ["conv1", "pool", "conv2", "up", "avg"]
    assert res["skipped"] == [("reflect", "padding_mode='reflect' (convarith pads with zeros)")]
    assert res["max_abs_error"] <= 1e-5 * max(1.0, res["max_abs_reference"])
    assert res["convarith"].shape == (2, 2, 8, 8)
    assert isinstance(model.conv1, nn.Conv2d)  # compare() leaves the model alone
    report = ct.swap_modules(model)  # in place: the parameters are shared, not copied
    assert isinstance(model.conv1, ct.ConvarithConv) and model.conv1.weight is report["model"].conv1.weight
    with torch.no_grad():
        close(model(x), res["reference"])


def test_export_and_compile_see_convarith_shapes():
    torch.manual_seed(0)
    model = Net().eval()
    ct.swap_modules(model)
    x = rand(1, 3, 16, 16)
    ep = torch.export.export(model, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"convarith.conv.default", "convarith.max_pool.default", "convarith.conv_transpose.default",
            "convarith.avg_pool.default"} <= targets
    shapes = [tuple(n.meta["val"].shape) for n in ep.graph.nodes
              if n.op == "call_function" and str(n.target) == "convarith.conv_transpose.default"]
    assert shapes == [(1, 4, 8, 8)]  # 4x4 -> s(i-1) + k - 2p = 2*3 + 4 - 2 = 8
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        close(compiled(x), model(x))
