"""Small real JPEG datasets made with Pillow, for the brochure tests.

Image ``i`` is filled with a colour computed from ``i``, so a decoded sample can be traced back to the
row it came from even after lossy JPEG coding.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def colour(i: int) -> tuple[int, int, int]:
    """The fill colour of image ``i`` (channels far apart, so JPEG noise cannot confuse two rows)."""
    return (20 + 7 * i) % 256, (200 - 5 * i) % 256, (60 + 11 * i) % 256


def write_images(folder: Path, n: int, size: tuple[int, int] = (24, 16), prefix: str = "img_") -> list[str]:
    """Write ``n`` solid-colour JPEGs of ``size`` (width, height) and return their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"{prefix}{i + 1}.jpg"
        Image.new("RGB", size, colour(i)).save(folder / name, quality=95)
        names.append(name)
    return names


def write_file_list(
    folder: Path, names: list[str], labels: list[int], csv_name: str = "file_list.csv"
) -> str:
    """Write the brochure's tab-separated ``image<TAB>label`` table and return its name."""
    rows = ["image\tlabel"] + [f"{name}\t{label}" for name, label in zip(names, labels, strict=True)]
    (folder / csv_name).write_text("\n".join(rows) + "\n")
    return csv_name


def pack_indexed(folder: Path, n: int, dst: Path, size: tuple[int, int] = (8, 8)) -> Path:
    """Pack ``n`` images whose label is their row index into ``dst`` (one worker, quiet)."""
    from nebulae.fuel import FuelGenerator

    names = write_images(folder, n, size)
    csv_name = write_file_list(folder, names, list(range(n)))
    fg = FuelGenerator(str(folder), csv_name, ["vuint8", "int64"])
    fg.generate(str(dst), size[1], size[0], nworker=1, verbose=False)
    return dst
