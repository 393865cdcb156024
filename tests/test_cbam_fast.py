"""The optimised CBAM forward/backward against a straightforward reference.

``CBAM.forward`` computes both gates with one full-size allocation and,
under autograd, uses a hand-written backward (``_CBAMFunction``). Here it is
compared with the textbook composition of plain torch ops (autograd through
every op) on random inputs: outputs, input gradients and every parameter's
gradient, for both initialisations, the one-branch variants, batch > 1,
1x1 maps, ties in the maxima, frozen parts and inside a ResNet.
"""
import pytest
import torch
from mmengine.registry import DefaultScope

from mmseg_cells.utils import register_all_modules
from mmdet.models.backbones import ResNet
from mmseg_cells.models import CBAM

register_all_modules()  # registrations and compat fixes


@pytest.fixture(autouse=True)
def mmdet_scope():
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def reference_cbam(m: CBAM, x: torch.Tensor) -> torch.Tensor:
    """CBAM as written in the paper, one plain op at a time."""
    n, c = x.shape[:2]
    if m.use_channel:
        avg = x.mean(dim=(2, 3))
        mx = x.amax(dim=(2, 3))
        z = m.channel_mlp(avg) + m.channel_mlp(mx)
        x = x * (torch.sigmoid(z) * m.gate_scale).view(n, c, 1, 1)
    if m.use_spatial:
        desc = torch.cat([x.mean(dim=1, keepdim=True),
                          x.amax(dim=1, keepdim=True)], dim=1)
        x = x * (torch.sigmoid(m.spatial_conv(desc)) * m.gate_scale)
    return x


def make(c, identity_init, channel=True, spatial=True, dtype=torch.float32,
         seed=0):
    torch.manual_seed(seed)
    m = CBAM(c, reduction=4, kernel_size=3 if c < 16 else 7,
             use_channel=channel, use_spatial=spatial,
             identity_init=identity_init)
    if identity_init:  # trained weights: the gates are no longer 1
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0, 0.2)
    return m.to(dtype)


def grads(fn, m, x, grad_out):
    x = x.detach().requires_grad_()
    y = fn(m, x)
    params = list(m.parameters())
    got = torch.autograd.grad(y, [x] + params, grad_out)
    return y.detach(), got


def assert_close_rel(a, b, rel):
    scale = max(1.0, b.abs().max().item())
    err = (a - b).abs().max().item()
    assert err <= rel * scale, (err, scale)


CASES = [
    # (shape, identity_init, use_channel, use_spatial)
    ((2, 32, 9, 7), False, True, True),
    ((2, 32, 9, 7), True, True, True),
    ((1, 64, 16, 16), False, True, True),
    ((3, 16, 1, 1), False, True, True),
    ((2, 8, 5, 6), False, True, False),
    ((2, 8, 5, 6), True, False, True),
    ((1, 24, 6, 4), True, True, False),
    ((2, 24, 6, 4), False, False, True),
]


@pytest.mark.parametrize('shape,ii,ch,sp', CASES)
def test_forward_backward_match_reference_float64(shape, ii, ch, sp):
    """In float64 the two agree to rounding (~1e-15): the hand-written
    backward is the exact gradient of the forward."""
    m = make(shape[1], ii, ch, sp, torch.float64)
    torch.manual_seed(1)
    x = torch.randn(shape, dtype=torch.float64)
    go = torch.randn(shape, dtype=torch.float64)
    y, g = grads(lambda mod, t: mod(t), m, x, go)
    y_ref, g_ref = grads(reference_cbam, m, x, go)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('shape,ii,ch,sp', CASES)
def test_forward_backward_match_reference_float32(shape, ii, ch, sp):
    m = make(shape[1], ii, ch, sp)
    torch.manual_seed(2)
    x = torch.randn(shape)
    go = torch.randn(shape)
    y, g = grads(lambda mod, t: mod(t), m, x, go)
    y_ref, g_ref = grads(reference_cbam, m, x, go)
    assert_close_rel(y, y_ref, 1e-5)
    for a, b in zip(g, g_ref):
        assert_close_rel(a, b, 1e-5)


@pytest.mark.parametrize('ii', [False, True])
def test_output_bit_identical_to_gate_composition(ii):
    """Forward (with or without autograd) is exactly ``x * channel_gate``
    then ``* spatial_gate``, the module's own public gates."""
    m = make(64, ii)
    x = torch.randn(2, 64, 12, 10)
    with torch.no_grad():
        x1 = x * m.channel_gate(x)
        expect = x1 * m.spatial_gate(x1)
        assert torch.equal(m(x), expect)
    assert torch.equal(m(x.requires_grad_()).detach(), expect)
    assert not torch.equal(expect, x)  # the gates did something


def test_input_is_not_modified():
    m = make(32, False)
    x = torch.randn(2, 32, 8, 8)
    before = x.clone()
    with torch.no_grad():
        m(x)
    m(x.requires_grad_()).sum().backward()
    assert torch.equal(x.detach(), before)


def test_ties_in_maxima_split_the_gradient_like_amax():
    """Constant channels / regions make the maxima tie; the gradient is
    spread over the tied elements exactly as autograd's amax does."""
    m = make(16, False, dtype=torch.float64)
    torch.manual_seed(3)
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    x[:, 0] = 0.5  # a constant channel: max over pixels ties everywhere
    x[:, :, :2, :3] = 2.0  # equal across channels: max over channels ties
    go = torch.randn_like(x)
    _, g = grads(lambda mod, t: mod(t), m, x, go)
    _, g_ref = grads(reference_cbam, m, x, go)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_gradcheck():
    """Finite differences w.r.t. the input and every parameter."""
    m = make(6, False, dtype=torch.float64)
    names = [n for n, _ in m.named_parameters()]
    torch.manual_seed(4)
    x = torch.randn(2, 6, 4, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]

    def fn(x, *ps):
        return torch.func.functional_call(m, dict(zip(names, ps)), (x, ))
    assert torch.autograd.gradcheck(fn, (x, *params))


def test_frozen_parameters_or_frozen_input():
    m = make(16, False)
    x = torch.randn(2, 16, 5, 5)
    go = torch.randn_like(x)
    _, g_ref = grads(reference_cbam, m, x, go)
    # parameters frozen, input trainable
    for p in m.parameters():
        p.requires_grad_(False)
    xg = x.clone().requires_grad_()
    m(xg).backward(go)
    assert_close_rel(xg.grad, g_ref[0], 1e-5)
    # input without grad, parameters trainable (e.g. after a frozen stem)
    for p in m.parameters():
        p.requires_grad_(True)
    m(x).backward(go)
    for p, b in zip(m.parameters(), g_ref[1:]):
        assert_close_rel(p.grad, b, 1e-5)
    # nothing needs a gradient: the output has no graph
    for p in m.parameters():
        p.requires_grad_(False)
    assert not m(x).requires_grad


def test_inside_resnet_training_step_matches_reference(monkeypatch):
    """In mmdet's Bottleneck the CBAM output is added to in place
    (``out += identity``); the gradients of the whole backbone equal those
    with the reference CBAM."""
    torch.manual_seed(0)
    plugins = [dict(cfg=dict(type='CBAM', identity_init=False),
                    stages=(True, True, True, True),
                    position='after_conv3')]
    net = ResNet(depth=50, base_channels=8, plugins=plugins,
                 frozen_stages=1).double()
    net.init_weights()
    net.train()
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)

    def run():
        net.zero_grad()
        outs = net(x)
        sum((o * torch.linspace(-1, 1, o.shape[1], dtype=o.dtype).view(
            1, -1, 1, 1)).sum() for o in outs).backward()
        return [o.detach() for o in outs], {
            n: p.grad.clone() for n, p in net.named_parameters()
            if p.grad is not None}

    outs, g = run()
    monkeypatch.setattr(CBAM, 'forward', reference_cbam)
    outs_ref, g_ref = run()
    for a, b in zip(outs, outs_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert g.keys() == g_ref.keys()
    assert any('cbam' in k for k in g)
    for k in g:
        torch.testing.assert_close(g[k], g_ref[k], rtol=1e-8, atol=1e-9)


def test_inplace_gates_the_input_bit_identically():
    m = make(32, True)
    x = torch.randn(2, 32, 7, 9)
    with torch.no_grad():
        expect = m(x)
        m.inplace = True
        y = x.clone()
        out = m(y)
    assert torch.equal(out, expect)
    assert out.data_ptr() == y.data_ptr() and torch.equal(y, expect)
    # under autograd the input is never modified
    xg = x.clone().requires_grad_()
    assert torch.equal(m(xg).detach(), expect)
    assert torch.equal(xg.detach(), x)
    # non-contiguous input: falls back to a new tensor
    with torch.no_grad():
        t = x.transpose(2, 3)
        before = t.clone()
        m(t)
    assert torch.equal(t, before)


def test_inplace_inside_resnet_matches_out_of_place():
    torch.manual_seed(0)
    plugins = [dict(cfg=dict(type='CBAM', identity_init=False),
                    stages=(True, True, True, True),
                    position='after_conv3')]
    net = ResNet(depth=50, base_channels=8, plugins=plugins)
    net.eval()  # mmdet's ResNet.train() returns None
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        for m in net.modules():
            if isinstance(m, CBAM):
                m.inplace = True
        got = net(x)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)


@pytest.mark.parametrize('use_channel,use_spatial', [(True, True),
                                                     (True, False),
                                                     (False, True)])
@pytest.mark.parametrize('inplace', [False, True])
def test_channels_last_input_is_gated_in_its_layout(use_channel, use_spatial,
                                                    inplace):
    torch.manual_seed(0)
    m = CBAM(24, reduction=4, use_channel=use_channel,
             use_spatial=use_spatial, identity_init=False)
    x = torch.randn(2, 24, 6, 5)
    with torch.no_grad():
        expect = m(x)
        m.inplace = inplace
        xc = x.contiguous(memory_format=torch.channels_last)
        ptr = xc.data_ptr()
        out = m(xc)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert not out.is_contiguous()
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-6)
    # in place only when asked; the input is never reordered
    assert (out.data_ptr() == ptr) is inplace
    if not inplace:
        torch.testing.assert_close(xc, x, rtol=0, atol=0)
