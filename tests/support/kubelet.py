"""A folder updated the way kubelet updates a ConfigMap, Secret or projected volume (its
AtomicWriter): the files go into a new hidden timestamped folder, a `..data_tmp` link to it is
renamed over `..data` (the one atomic step), each visible name is a link `name -> ..data/name`,
and the old timestamped folder is removed. A watcher of `name` sees a new file appear at once."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


class ProjectedVolume:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: dict[str, str | bytes]) -> None:
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        new = Path(tempfile.mkdtemp(prefix=stamp, dir=self.root))
        for name, content in files.items():
            path = new / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode("utf-8")
            path.write_bytes(content)
            path.chmod(0o444)
        temporary = self.root / "..data_tmp"
        temporary.symlink_to(new.name)
        temporary.rename(data)  # atomic: a reader sees the old files or the new ones
        for name in files:
            visible = self.root / name.split("/")[0]
            if not visible.is_symlink():
                visible.symlink_to(Path("..data") / name.split("/")[0])
        for name in {p.name for p in self.root.iterdir()} - {"..data", new.name, *files}:
            stale = self.root / name
            if stale.is_symlink() and not stale.exists():
                stale.unlink()  # a key no longer in the volume
        if old is not None:
            shutil.rmtree(self.root / old)

    def timestamped_folder(self) -> Path:
        return self.root / os.readlink(self.root / "..data")
