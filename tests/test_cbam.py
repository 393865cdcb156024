"""CBAM plugin: shapes, gradients, parameter count, variants, grafting."""
import copy

import pytest
import torch
from mmcv.cnn import build_plugin_layer
from mmengine.registry import DefaultScope

from mmseg_cells.utils import register_all_modules
from mmdet.models.backbones import ResNet
from mmseg_cells.models import CBAM, ResNetStagePlugins

register_all_modules()  # registrations and compat fixes


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Plugins are looked up in the default scope's registry, as under the
    Runner (default_scope='mmdet')."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def closed_form_params(c, r=16, k=7, channel=True, spatial=True):
    h = max(c // r, 1)
    n = 0
    if channel:  # Linear(c, h) + Linear(h, c), with biases
        n += c * h + h + h * c + c
    if spatial:  # Conv2d(2, 1, k) with bias
        n += 2 * k * k + 1
    return n


@pytest.mark.parametrize('shape', [(2, 64, 9, 7), (1, 256, 16, 16),
                                   (3, 32, 1, 1)])
def test_output_shape_and_identity_at_init(shape):
    x = torch.randn(shape)
    m = CBAM(shape[1])
    out = m(x)
    assert out.shape == x.shape
    # identity init: gates are exactly 2 * sigmoid(0) = 1
    assert torch.equal(out, x)


def test_paper_init_is_not_identity_and_gates_in_unit_interval():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 8, 8)
    m = CBAM(64, identity_init=False)
    g_c = m.channel_gate(x)
    assert ((g_c > 0) & (g_c < 1)).all()
    # the problem identity init avoids: the branch is scaled by ~0.25
    ratio = (m(x).abs().mean() / x.abs().mean()).item()
    assert 0.1 < ratio < 0.5


@pytest.mark.parametrize('c,r,k', [(64, 16, 7), (256, 8, 3), (2048, 16, 7),
                                   (8, 16, 5)])
def test_parameter_count_closed_form(c, r, k):
    for ch, sp in [(True, True), (True, False), (False, True)]:
        m = CBAM(c, reduction=r, kernel_size=k, use_channel=ch,
                 use_spatial=sp)
        n = sum(p.numel() for p in m.parameters())
        assert n == closed_form_params(c, r, k, ch, sp)


def test_gradients_reach_all_parameters():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 6, 6)
    # paper init: every parameter has a gradient at step 0
    m = CBAM(32, reduction=4, identity_init=False)
    m(x).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # identity init: the zero-initialised output layers learn at step 0 ...
    m = CBAM(32, reduction=4)
    target = torch.randn_like(x)
    loss = (m(x) - target).square().mean()
    loss.backward()
    assert m.channel_mlp[2].weight.grad.abs().sum() > 0
    assert m.spatial_conv.weight.grad.abs().sum() > 0
    # ... and after one optimiser step gradients reach every parameter
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    (m(x) - target).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_channel_only_and_spatial_only_variants():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 5, 6) + 0.5  # positive: ratios well defined
    ch = CBAM(16, reduction=4, use_spatial=False, identity_init=False)
    sp = CBAM(16, use_channel=False, identity_init=False)
    assert not hasattr(ch, 'spatial_conv') and not hasattr(sp, 'channel_mlp')
    r_ch = ch(x) / x  # one gate per (n, c): constant over space
    assert torch.allclose(r_ch, r_ch[..., :1, :1].expand_as(r_ch), atol=1e-6)
    assert not torch.allclose(r_ch[:, :1], r_ch[:, 1:2])
    r_sp = sp(x) / x  # one gate per (n, h, w): constant over channels
    assert torch.allclose(r_sp, r_sp[:, :1].expand_as(r_sp), atol=1e-6)
    assert not torch.allclose(r_sp[..., 0, 0], r_sp[..., 1, 1])
    with pytest.raises(ValueError):
        CBAM(16, use_channel=False, use_spatial=False)
    with pytest.raises(ValueError):
        CBAM(16, kernel_size=4)


def test_lookup_through_plugin_mechanism():
    # scoped key: works without a default scope too
    with DefaultScope.overwrite_default_scope(None):
        assert build_plugin_layer(dict(type='mmdet.CBAM'),
                                  in_channels=8)[0] == 'cbam'
    name, layer = build_plugin_layer(dict(type='CBAM', reduction=8),
                                     in_channels=64)
    assert name == 'cbam' and isinstance(layer, CBAM)
    assert layer.in_channels == 64 and layer.reduction == 8

    plugins = [dict(cfg=dict(type='CBAM'), stages=(False, True, True, True),
                    position='after_conv3')]
    net = ResNet(depth=50, base_channels=16, plugins=plugins)
    found = {n: m for n, m in net.named_modules() if isinstance(m, CBAM)}
    # ResNet-50 has 4 + 6 + 3 bottlenecks in stages 2-4
    assert len(found) == 13
    assert not any(n.startswith('layer1.') for n in found)
    assert found['layer2.0.cbam'].in_channels == 16 * 2 * 4
    assert found['layer4.2.cbam'].in_channels == 16 * 8 * 4


def _randomise_bn(net):
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def test_grafting_keeps_pretrained_outputs_at_step0():
    """A pretrained ResNet with CBAM inserted computes exactly what it
    computed before: the inserted attention is the identity at step 0."""
    torch.manual_seed(0)
    plain = ResNet(depth=50, base_channels=8)
    plain.init_weights()
    _randomise_bn(plain)  # stands in for pretrained weights
    plain.eval()
    cfg = dict(cfg=dict(type='CBAM'), stages=(True, True, True, True),
               position='after_conv3')
    grafted = ResNet(depth=50, base_channels=8, plugins=[cfg])
    grafted.init_weights()
    missing, unexpected = grafted.load_state_dict(plain.state_dict(),
                                                  strict=False)
    assert not unexpected and all('cbam' in k for k in missing)
    grafted.eval()
    stage_end = ResNetStagePlugins(
        depth=50, base_channels=8,
        stage_plugins=[dict(cfg=dict(type='CBAM'),
                            stages=(True, True, True, True))])
    stage_end.init_weights()
    stage_end.load_state_dict(plain.state_dict(), strict=False)
    stage_end.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = plain(x)
        for net in (grafted, stage_end):
            for a, b in zip(ref, net(x)):
                assert torch.allclose(a, b, atol=1e-5)
        # with the paper's init the same graft changes the features
        paper = copy.deepcopy(cfg)
        paper['cfg']['identity_init'] = False
        naive = ResNet(depth=50, base_channels=8, plugins=[paper])
        naive.init_weights()
        naive.load_state_dict(plain.state_dict(), strict=False)
        naive.eval()
        diff = (naive(x)[-1] - ref[-1]).abs().mean() / ref[-1].abs().mean()
        assert diff > 0.05


def test_stage_plugins_placement_and_validation():
    net = ResNetStagePlugins(
        depth=50, base_channels=8,
        stage_plugins=[dict(cfg=dict(type='CBAM'),
                            stages=(True, False, True, False))])
    names = [n for n, m in net.named_children() if isinstance(m, CBAM)]
    assert names == ['cbam_stage1', 'cbam_stage3']
    assert net.cbam_stage3.in_channels == 8 * 4 * 4
    outs = net(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]
    with pytest.raises(ValueError):
        ResNetStagePlugins(depth=50, stage_plugins=[
            dict(cfg=dict(type='CBAM'), stages=(True, True))])


def test_cbam_overhead_on_resnet50():
    """CBAM(r=16) in every bottleneck adds ~2.5 M parameters to R50 (the
    paper's ResNet-50 + CBAM: 25.56 M -> 28.09 M)."""
    base = sum(p.numel() for p in ResNet(depth=50).parameters())
    plugins = [dict(cfg=dict(type='CBAM'), stages=(True, True, True, True),
                    position='after_conv3')]
    with_cbam = sum(
        p.numel() for p in ResNet(depth=50, plugins=plugins).parameters())
    expected = sum(
        n * closed_form_params(c)
        for n, c in [(3, 256), (4, 512), (6, 1024), (3, 2048)])
    assert with_cbam - base == expected
    assert 2.4e6 < expected < 2.6e6
