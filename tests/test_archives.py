"""tlcourse.archives: damaged archives and unsafe member names are refused, nothing extracted.

The archives are the real image-folder fixture packed here (``small_archives``), cut short or
given one bad member.
"""

from __future__ import annotations

import re

import pytest
from data_files import make_archive

from tlcourse.errors import DataFormatError
from tlcourse.image_folder import load_image_folder


def test_damaged_archives_are_refused(small_archives, tmp_path):
    for suffix, packed in small_archives.items():
        short = tmp_path / f"short{suffix}"
        short.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
        with pytest.raises(DataFormatError, match=rf"short{re.escape(suffix)}.*Download it again"):
            load_image_folder(short)


def test_unsafe_member_names_are_refused(image_folder_root, tmp_path):
    cases = {".tar.gz": "../evil.jpg", ".zip": "/tmp/evil.jpg"}
    for suffix, name in cases.items():
        packed = make_archive(image_folder_root, tmp_path / f"evil{suffix}", {name: b"x"})
        with pytest.raises(DataFormatError, match=rf"member {re.escape(repr(name))}.*refused"):
            load_image_folder(packed)
    assert not (tmp_path.parent / "evil.jpg").exists()
