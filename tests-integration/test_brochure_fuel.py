"""The brochure's Fuel section, run as written: FuelGenerator, generate, modify, Tank and Comburant.

Every change to the brochure's code is listed in tests-integration/README.md.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from brochure.images import colour, write_file_list, write_images

from nebulae.fuel import FuelGenerator

N_IMAGES = 10


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """The brochure's file_dir: img_1.jpg ... img_10.jpg and a tab-separated file_list.csv."""
    file_dir = tmp_path_factory.mktemp("raw")
    names = write_images(file_dir, N_IMAGES, size=(24, 16))
    labels = [(3 * i) % 7 for i in range(N_IMAGES)]
    file_list = write_file_list(file_dir, names, labels)
    return file_dir, file_list, labels


@pytest.fixture(scope="module")
def packed(raw, tmp_path_factory):
    """The brochure's generate() call with its documented defaults spelled out."""
    file_dir, file_list, labels = raw
    dst_path = str(tmp_path_factory.mktemp("fuel") / "fuel.hdf5")
    fg = FuelGenerator(str(file_dir), file_list, ["int64"], False)
    fg.generate(dst_path, 12, 20, channel=3, encode="JPEG", shards=1, keep_exif=True)
    return dst_path, labels


def test_generate_packs_the_file_list_resized_in_csv_order(packed):
    from nebulae.fuel import byte2arr

    dst_path, labels = packed
    with h5py.File(dst_path, "r") as f:
        assert list(f["label"][()]) == labels
        assert f["image"].shape == (N_IMAGES,)
        first = byte2arr(f["image"][0])
        last = byte2arr(f["image"][N_IMAGES - 1])
    assert first.shape == (12, 20, 3)  # height=12, width=20
    assert np.abs(first.astype(int) - colour(0)).max() <= 8
    assert np.abs(last.astype(int) - colour(N_IMAGES - 1)).max() <= 8


@pytest.mark.parametrize("form", ["keywords", "config"])
def test_modify_changes_the_generation_size_in_both_forms(raw, tmp_path, form):
    from nebulae.fuel import byte2arr

    file_dir, file_list, _ = raw
    fg = FuelGenerator(str(file_dir), file_list, ["int64"], False)
    if form == "keywords":
        fg.modify(height=200, width=200)
    else:
        config = {"height": 200, "width": 200}
        fg.modify(config=config)
    written = fg.generate(str(tmp_path / "big.npz"), nworker=1, verbose=False)
    with np.load(written[0], allow_pickle=False) as npz:
        offsets = npz["image__offsets"]
        image = byte2arr(npz["image"][offsets[0] : offsets[1]])
        assert list(npz["label"]) == raw[2]
    assert image.shape == (200, 200, 3)


def test_generate_shards_into_numbered_files(raw, tmp_path):
    file_dir, file_list, labels = raw
    fg = FuelGenerator(str(file_dir), file_list, ["int64"], False)
    written = fg.generate(str(tmp_path / "fuel.hdf5"), 8, 8, shards=3, nworker=1, verbose=False)
    assert [p.rsplit("/", 1)[1] for p in written] == ["fuel_0.hdf5", "fuel_1.hdf5", "fuel_2.hdf5"]
    rows = []
    for path in written:
        with h5py.File(path, "r") as f:
            rows += list(f["label"][()])
    assert rows == labels


def test_sequence_file_list_with_the_brochure_layout(tmp_path):
    """The is_seq table: a quoted, comma-separated frame list per row (the empty entry `,,` is skipped)."""
    from nebulae.fuel import Tank, depot

    frames = write_images(tmp_path, 6, size=(8, 8), prefix="vid_1_frame_")
    frames += write_images(tmp_path, 4, size=(8, 8), prefix="vid_2_frame_")
    lines = [
        "image\tlabel",
        '"vid_1_frame_1.jpg,vid_1_frame_2.jpg,,vid_1_frame_3.jpg,vid_1_frame_4.jpg,vid_1_frame_5.jpg,vid_1_frame_6.jpg"\t2',
        '"vid_2_frame_1.jpg,vid_2_frame_2.jpg,,vid_2_frame_4.jpg"\t0',
    ]
    (tmp_path / "seq.csv").write_text("\n".join(lines) + "\n")
    fg = FuelGenerator(str(tmp_path), "seq.csv", ["int64"], True)
    fg.generate(str(tmp_path / "seq.hdf5"), 8, 8, nworker=1, verbose=False)
    with h5py.File(tmp_path / "seq.hdf5", "r") as f:
        assert int(f["_MAX_FRAMES"][()]) == 6
        assert list(f["label"][()]) == [2, 0]

    every_2nd = depot.Comburant(depot.sampling(2), end=False)

    def fetcher(data, idx):
        return {"clip": every_2nd(data["image"][idx]), "label": data["label"][idx]}

    tank = Tank(
        str(tmp_path / "seq.hdf5"),
        {"image": "vuint8", "label": "int64"},
        1,
        False,
        fetch_fn=fetcher,
        collate_fn=lambda items: items[0],
        nworker=0,
        verbose=False,
    )
    first, second = tank.next(), tank.next()
    assert len(first["clip"]) == 3 and first["clip"][0].shape == (8, 8, 3)
    assert len(second["clip"]) == 1  # 3 frames, theta 2 -> 1 frame
    assert int(first["label"]) == 2
    tank.close()


def test_sequence_rows_without_a_label_stay_an_error(tmp_path):
    """The brochure's is_seq example leaves the 2nd and 3rd labels empty; that is reported, not guessed."""
    write_images(tmp_path, 2, size=(8, 8), prefix="vid_1_frame_")
    write_images(tmp_path, 2, size=(8, 8), prefix="vid_2_frame_")
    lines = [
        "image\tlabel",
        '"vid_1_frame_1.jpg,vid_1_frame_2.jpg"\t2',
        '"vid_2_frame_1.jpg,vid_2_frame_2.jpg"\t',
    ]
    (tmp_path / "seq.csv").write_text("\n".join(lines) + "\n")
    fg = FuelGenerator(str(tmp_path), "seq.csv", ["int64"], True)
    with pytest.raises(ValueError, match="label"):
        fg.generate(str(tmp_path / "seq.hdf5"), 8, 8, nworker=1, verbose=False)
    assert not (tmp_path / "seq.hdf5").exists()


# ---------------------------------------------------------------- Tank (the brochure's E.g.)
# fmt: off
from nebulae.fuel import depot  # noqa: E402, I001  (the brochure's own import line)
# define data-reading functions
def fetcher(data, idx):
    ret = {}
    ret['image'] = data['image'][idx]
    ret['label'] = data['label'][idx].astype('int64')
    return ret

def prep(data):
    # convert to channel-first format
    data['image'] = np.transpose(data['image'], (2, 0,
1)).astype('float32')
    return data
# fmt: on


def test_tank_with_the_brochure_fetcher_and_prep(packed):
    dst_path, labels = packed
    tank = depot.Tank(dst_path, {"image": "vuint8", "label": "int64"}, 4, True, True, fetcher, prep, None)
    assert len(tank) == N_IMAGES
    assert tank.MPE == N_IMAGES // 4  # in_same_size drops the incomplete batch
    palette = np.array([colour(i) for i in range(N_IMAGES)])
    seen = []
    for _ in range(tank.MPE):
        batch = tank.next()
        assert batch["image"].shape == (4, 3, 12, 20) and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int64
        for image, label in zip(batch["image"], batch["label"], strict=True):
            # the colour names the row, so image and label must come from the same row
            row = int(np.abs(palette - image[:, 0, 0]).sum(axis=1).argmin())
            assert labels[row] == int(label)
            seen.append(row)
    assert len(seen) == len(set(seen)) == 8  # no row twice within an epoch
    assert tank.next()["image"].shape == (4, 3, 12, 20)  # the next call starts epoch 1
    assert tank.epoch == 1
    tank.close()


def test_tank_without_same_size_keeps_the_short_last_batch(packed):
    dst_path, _ = packed
    tank = depot.Tank(
        dst_path,
        {"image": "vuint8", "label": "int64"},
        4,
        False,
        False,
        fetcher,
        prep,
        nworker=0,
        verbose=False,
    )
    sizes = [len(tank.next()["label"]) for _ in range(tank.MPE)]
    assert tank.MPE == 3 and sizes == [4, 4, 2]
    tank.close()


# ---------------------------------------------------------------- Comburant ops of the table
@pytest.fixture(scope="module")
def photo():
    from PIL import Image

    ramp = np.linspace(0, 255, 9 * 9 * 3).reshape(9, 9, 3).astype(np.uint8)
    return np.asarray(Image.fromarray(ramp))


def test_flip_mirrors_the_image(photo):
    upside_down = depot.Comburant(depot.flip(depot.HORIZONTAL), end=False)(photo)
    left_right = depot.Comburant(depot.flip(depot.VERTICAL), end=False)(photo)
    assert np.array_equal(upside_down, photo[::-1])
    assert np.array_equal(left_right, photo[:, ::-1])


def test_crop_cuts_the_given_size_with_random_area_and_aspect(photo):
    plain = depot.Comburant(depot.crop((5, 4)), end=False)(photo)
    resized = depot.Comburant(depot.crop((6, 6), area_ratio=(0.3, 0.8), aspect_ratio=(0.75, 1.33)))(photo)
    assert plain.shape == (5, 4, 3) and plain.dtype == np.uint8
    assert resized.shape == (6, 6, 3) and resized.dtype == np.float32 and resized.max() <= 1.0


def test_rotate_within_a_range(photo):
    quarter = depot.Comburant(depot.rotate((90, 90)), end=False)(photo)
    random_angle = depot.Comburant(depot.rotate(30), end=False)(photo)
    assert np.array_equal(quarter, np.rot90(photo))  # counter-clockwise
    assert random_angle.shape == photo.shape


def test_brighten_contrast_saturate_apply_their_factor(photo):
    doubled = depot.Comburant(depot.brighten((2, 2)), end=False)(photo)
    flat = depot.Comburant(depot.contrast((0, 0)), end=False)(photo)
    gray = depot.Comburant(depot.saturate((0, 0)), end=False)(photo)
    assert np.array_equal(doubled, np.clip(photo.astype(int) * 2, 0, 255))
    assert len(np.unique(flat)) == 1  # no contrast left: every pixel is the mean luma
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    for op in (depot.brighten(0.3), depot.contrast(0.3), depot.saturate(0.3)):
        assert depot.Comburant(op)(photo).shape == photo.shape


def test_sampling_takes_a_frame_every_theta(photo):
    clip = [np.full((4, 4, 3), i, np.uint8) for i in range(9)]
    picked = depot.Comburant(depot.sampling(3), end=False)(clip)
    assert len(picked) == 3
    assert [int(f[0, 0, 0]) // 3 for f in picked] == [0, 1, 2]  # one frame from each window of 3


# ---------------------------------------------------------------- documented arguments
def test_config_dict_replaces_the_other_arguments(raw, tmp_path):
    file_dir, file_list, labels = raw
    config = {"file_dir": str(file_dir), "file_list": file_list, "dtype": ["int64"], "is_seq": False}
    fg = FuelGenerator(config=config)
    fg.generate(str(tmp_path / "cfg.hdf5"), 8, 8, nworker=1, verbose=False)
    with h5py.File(tmp_path / "cfg.hdf5", "r") as f:
        assert list(f["label"][()]) == labels
    with pytest.raises(TypeError):  # "mutually exclusive"
        FuelGenerator(str(file_dir), config=config)


def test_png_is_lossless_and_keep_exif_keeps_the_photo_metadata(tmp_path):
    from PIL import Image

    from nebulae.fuel import byte2arr

    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "NebulaeCam"  # Make
    Image.fromarray(pixels).save(tmp_path / "img_1.png")
    Image.fromarray(pixels).save(tmp_path / "img_2.jpg", exif=exif, quality=95)
    (tmp_path / "file_list.csv").write_text("image\tlabel\nimg_1.png\t0\nimg_2.jpg\t1\n")
    fg = FuelGenerator(str(tmp_path), "file_list.csv", ["int64"], False)
    fg.generate(str(tmp_path / "png.hdf5"), encode="PNG", nworker=1, verbose=False)
    fg.generate(str(tmp_path / "exif.hdf5"), keep_exif=True, nworker=1, verbose=False)
    fg.generate(str(tmp_path / "plain.hdf5"), keep_exif=False, nworker=1, verbose=False)
    with h5py.File(tmp_path / "png.hdf5", "r") as f:
        assert np.array_equal(byte2arr(f["image"][0]), pixels)  # 0 x 0: each image keeps its size
    for name, kept in (("exif.hdf5", True), ("plain.hdf5", False)):
        with h5py.File(tmp_path / name, "r") as f:
            assert (b"NebulaeCam" in f["image"][1].tobytes()) is kept
