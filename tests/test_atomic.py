"""mmseg_cells.utils.atomic: all-or-nothing output files."""
import os
import stat

import pytest

from mmseg_cells.utils import atomic_write, atomic_write_json


@pytest.mark.parametrize('umask,expect', [(0o022, 0o644), (0o077, 0o600),
                                          (0o002, 0o664)])
def test_written_file_follows_the_umask(tmp_path, umask, expect):
    """Outputs are as readable as any file the user creates (mkstemp's
    private 0o600 would hide shared results from a group)."""
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / 'out.json', {'a': 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'out.json').st_mode) == expect


def test_failure_keeps_the_earlier_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('earlier result')
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write('partial')
            raise RuntimeError('interrupted')
    assert path.read_text() == 'earlier result'
    assert sorted(os.listdir(tmp_path)) == ['out.txt']
