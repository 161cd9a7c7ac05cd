import keras
import pytest

import kvid
from kvid.models.flops import count_flops


def test_counts_two_flops_per_multiply_add_of_conv_and_dense_layers():
    clips = keras.Input((None, None, None, 3))
    x = keras.layers.Conv3D(4, 3, padding="same")(clips)
    x = keras.layers.GlobalAveragePooling3D()(x)
    model = keras.Model(clips, keras.layers.Dense(7)(x))
    conv_macs = (2 * 5 * 5) * 4 * (27 * 3)  # output positions x filters x fan-in
    dense_macs = 4 * 7
    assert count_flops(model, (2, 5, 5, 3)) == 2 * (conv_macs + dense_macs)


def test_s3d_matches_torchvisions_published_ops():
    # torchvision's s3d weights meta: _ops = 17.979 GMACs at 16x224x224.
    gmacs = count_flops(kvid.S3D(), (16, 224, 224, 3)) / 2e9
    assert gmacs == pytest.approx(17.979, abs=5e-4)


def test_unknown_sizes_are_rejected():
    with pytest.raises(ValueError, match="positive integers"):
        count_flops(kvid.S3DG(alpha=1 / 16), (None, 32, 32, 3))


def test_dg_p3d_at_the_papers_view():
    # A change detector: "Optimization Planning for 3D ConvNets" (table 8) quotes 123 GFLOPs
    # (multiply-adds) per 16x256x256 view and no reference code is public; the README explains
    # the 10% gap. The counter itself is checked independently above (by hand, and against
    # torchvision's published S3D figure); this pins kvid's documented DG-P3D architecture.
    gmacs = count_flops(kvid.DGP3D(), (16, 256, 256, 3)) / 2e9
    assert gmacs == pytest.approx(111.188, abs=5e-3)
