"""
Build the byte-level corpus: the Python standard library's own *.py files (every machine that
runs this has them, no download). Files in sorted order; every 10th goes to validation.
Writes train.bin and val.bin next to this file (raw bytes, vocabulary 256).

    python data/stdlib_char/prepare.py
"""
import os
from pathlib import Path

MAX_BYTES = 1 << 20   # 1 MiB is plenty for a model this small
HERE = Path(__file__).resolve().parent


def build() -> None:
    files = sorted(p for p in Path(os.__file__).parent.glob('*.py') if p.is_file())
    train, val, total = [], [], 0
    for i, path in enumerate(files):
        data = path.read_bytes()
        if total + len(data) > MAX_BYTES:
            break
        total += len(data)
        (val if i % 10 == 0 else train).append(data)
    for name, parts in (('train', train), ('val', val)):
        tmp = HERE / f'.{name}.bin.{os.getpid()}'
        tmp.write_bytes(b'\n'.join(parts))
        os.replace(tmp, HERE / f'{name}.bin')   # concurrent builders never see half a file
    print(f"train.bin: {sum(map(len, train)):,} bytes, val.bin: {sum(map(len, val)):,} bytes")


if __name__ == '__main__':
    build()
