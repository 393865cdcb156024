"""Fast checks of tools/gpu_check.sh and requirements/gpu_wheels.txt (issue 16).

The script itself runs on an offline GPU machine; here only what needs no GPU,
no wheels and no network: its syntax, its argument handling, the arch-list
derivation, the wheel list, and its first steps' failures.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'gpu_check.sh'
WHEELS = ROOT / 'requirements' / 'gpu_wheels.txt'
CONSTRAINTS = ROOT / 'requirements' / 'constraints.txt'
BASH = shutil.which('bash')

needs_bash = pytest.mark.skipif(BASH is None, reason='bash not found')
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec('torch') is None,
    reason='torch not importable by this Python')


def run_script(*args, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([BASH, str(SCRIPT), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def wheel_specs():
    """``{normalized name: (line, version)}`` of the name==version lines."""
    specs = {}
    for line in WHEELS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        m = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s;,]*)', line)
        assert m, f'not an exact name==version pin: {line!r}'
        name = re.sub(r'[-_.]+', '-', m.group(1)).lower()
        assert name not in specs, f'{name} listed twice'
        specs[name] = (line, m.group(2))
    return specs


@needs_bash
def test_syntax():
    subprocess.run([BASH, '-n', str(SCRIPT)], check=True)


@needs_bash
@pytest.mark.parametrize('args', [(), ('only-one',), ('a', 'b', 'c')])
def test_wrong_argument_count_prints_usage_and_exits_2(args):
    r = run_script(*args)
    assert r.returncode == 2
    assert 'usage: bash tools/gpu_check.sh WHEEL_DIR LOG_DIR' in r.stderr


@needs_bash
def test_help_exits_2():
    r = run_script('--help', 'x')
    assert r.returncode == 2 and 'usage:' in r.stderr


@needs_bash
def test_missing_wheel_dir_exits_2(tmp_path):
    r = run_script(tmp_path / 'nope', tmp_path / 'log')
    assert r.returncode == 2
    assert 'WHEEL_DIR' in r.stderr and 'not a directory' in r.stderr
    assert not (tmp_path / 'log').exists()


def _arch_list():
    text = SCRIPT.read_text()
    m = re.search(r"# ARCH_PY-BEGIN\nARCH_PY='(.*?)'\n# ARCH_PY-END", text,
                  re.S)
    assert m, 'ARCH_PY snippet not found between its markers'
    ns = {}
    exec(m.group(1), ns)  # the same text the script passes to python -c
    return ns['arch_list']


def test_arch_list_from_capabilities():
    arch_list = _arch_list()
    assert arch_list([(9, 0)]) == '9.0'          # H100 / H200
    assert arch_list([(8, 0), (9, 0), (8, 0)]) == '8.0;9.0'
    assert arch_list([(12, 0), (8, 6)]) == '8.6;12.0'
    with pytest.raises(ValueError):
        arch_list([])


def test_wheel_list_exact_unique_pins():
    specs = wheel_specs()
    for name in ('mmengine', 'mmdet', 'pycocotools', 'imagecodecs',
                 'tifffile', 'shapely', 'addict', 'yapf', 'termcolor',
                 'terminaltables', 'setuptools'):
        assert name in specs, f'{name} missing from {WHEELS.name}'
    assert specs['mmengine'][1] == '0.10.7'
    assert specs['mmdet'][1] == '3.3.0'
    assert int(specs['setuptools'][1].split('.')[0]) < 82  # pkg_resources
    # never the machine's own heavy packages
    for name in ('torch', 'numpy', 'opencv-python', 'opencv-python-headless',
                 'mmcv'):
        assert name not in specs
    assert re.search(r'^# sdist: mmcv==2\.1\.0$', WHEELS.read_text(), re.M)


#: what the GPU machine brings itself (requirements/gpu_wheels.txt header)
MACHINE_OWN = {'torch', 'numpy', 'opencv-python', 'scipy', 'matplotlib',
               'pillow', 'pyyaml', 'rich', 'six', 'tqdm'}


def test_wheel_list_covers_every_runtime_dependency():
    """A dependency added to pyproject.toml without its wheel in the list
    would stop the offline GPU machine's install."""
    text = (ROOT / 'pyproject.toml').read_text()
    block = text[text.index('dependencies = ['):]
    block = block[:block.index(']')]
    deps = {re.sub(r'[-_.]+', '-', m.lower())
            for m in re.findall(r'"([A-Za-z0-9._-]+)', block)}
    assert 'mmdet' in deps and 'faster-coco-eval' in deps
    missing = deps - set(wheel_specs()) - MACHINE_OWN - {'mmcv'}
    assert not missing, f'{WHEELS.name} lacks {sorted(missing)}'


def test_wheel_list_agrees_with_constraints():
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        m = re.fullmatch(r'([A-Za-z0-9._-]+)==(\S+)', line.strip())
        if m:
            pins[re.sub(r'[-_.]+', '-', m.group(1)).lower()] = m.group(2)
    for name, (_, version) in wheel_specs().items():
        if name in pins:
            assert pins[name] == version, (name, version, pins[name])


def test_script_reads_the_wheel_list_and_sdist():
    text = SCRIPT.read_text()
    assert 'requirements/gpu_wheels.txt' in text
    assert 'mmcv-$MMCV_VERSION.tar.gz' in text
    assert '--no-index' in text and '--no-deps' in text
    assert 'GPU_CHECK_DRY_RUN' in text


@needs_bash
@needs_torch
def test_no_gpu_without_dry_run_fails_at_step_0(tmp_path):
    r = run_script(tmp_path, tmp_path / 'log',
                   env={'PYTHON': sys.executable,
                        'GPU_CHECK_WORK': str(tmp_path / 'work')},
                   timeout=120)
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible here')
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'GPU CHECK FAILED at step 0/9' in r.stdout
    assert 'GPU_CHECK_DRY_RUN=1' in r.stdout
    log = (tmp_path / 'log' / 'gpu_check.log').read_text()
    assert 'GPU CHECK FAILED at step 0/9' in log


@needs_bash
@needs_torch
def test_dry_run_with_empty_wheel_dir_fails_at_install(tmp_path):
    r = run_script(tmp_path, tmp_path / 'log',
                   env={'PYTHON': sys.executable, 'GPU_CHECK_DRY_RUN': '1',
                        'GPU_CHECK_WORK': str(tmp_path / 'work')},
                   timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'GPU CHECK FAILED at step 1/9' in r.stdout
    assert 'WHEEL_DIR lacks' in r.stdout and 'mmengine==0.10.7' in r.stdout
    summary = (tmp_path / 'log' / 'summary.txt').read_text()
    assert '0/9 machine' in summary and 'FAILED at step 1/9' in summary
