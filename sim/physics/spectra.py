"""Absorption spectra of the skin's chromophores: melanin, blood (hemoglobin) and water.

Every number here has its source next to it. All coefficients are natural-log absorption
coefficients µa in 1/cm (the fluence falls as exp(−µa·z)). Wavelengths are in nm; the
supported range is 500–1064 nm (KTP 532 to Nd:YAG 1064): outside it a ValueError names the
range rather than extrapolating.

- Melanin: µa,mel = 6.6×10¹¹ · λ^−3.33 (S. L. Jacques, "Optical properties of biological
  tissues: a review", Phys. Med. Biol. 58 (2013) R37), the absorption inside a melanosome;
  the epidermis gets it times its melanin volume fraction.
- Hemoglobin: molar extinction coefficients of HbO2 and Hb, 500–1000 nm every 2 nm, as
  compiled by S. Prahl (Oregon Medical Laser Center, omlc.org/spectra/hemoglobin, from
  W. B. Gratzer and N. Kollias). µa = ln(10) · ε · c with c = 150 g/L / 64,500 g/mol
  (whole blood, Prahl's conversion). The table ends at 1000 nm; for 1000–1064 nm see
  `HEMOGLOBIN_MU_A_1064_CM`.
- Water: imaginary refractive index k of liquid water at 25 °C, µa = 4πk/λ. 500–1000 nm from
  G. M. Hale and M. R. Querry, "Optical constants of water in the 200-nm to 200-µm
  wavelength region", Appl. Opt. 12 (1973) 555; 1000–1100 nm from D. J. Segelstein,
  "The complex refractive index of water", MSc thesis, U. Missouri–Kansas City (1981), the
  same group's finer table: Hale & Querry step from 1.0 to 1.2 µm straight over the
  minimum near 1.06 µm, and interpolating across that step would put water at 1064 nm at
  0.5 1/cm instead of the measured 0.15.
- Bloodless, melanin-free tissue background: µa = 0.244 + 85.3·exp(−(λ − 154)/66.2)
  (S. L. Jacques, "Skin optics", Oregon Medical Laser Center News, Jan 1998).
- Reduced scattering of skin: µs' = 46.0 · (λ/500)^−1.421 (Jacques 2013, Table 2, skin
  average; approximate, review).
"""

from __future__ import annotations

import math

import numpy as np

MIN_WAVELENGTH_NM = 500.0
MAX_WAVELENGTH_NM = 1064.0

HEMOGLOBIN_G_PER_L = 150.0  # whole blood, Prahl's conversion example
HEMOGLOBIN_G_PER_MOL = 64_500.0
#: Volume fraction of water in whole blood (plasma ~ 0.92 water, cells ~ 0.66): approximate.
BLOOD_WATER_FRACTION = 0.8

#: Hemoglobin µa of whole blood (150 g/L) at 1064 nm [1/cm]. Approximate, review: Prahl's
#: table ends at 1000 nm (HbO2 1024, Hb 207 cm⁻¹/M there, i.e. 5.5 and 1.1 1/cm); extending
#: its 960–1000 nm trend to 1064 nm gives about 4 1/cm for oxygenated and well under 1 for
#: deoxygenated blood, and whole-blood measurements are of that order (compiled in
#: N. Bosschaart et al., Lasers Med. Sci. 29 (2014) 453). Between 1000 and 1064 nm the value
#: is interpolated linearly from the table's 1000 nm row.
HEMOGLOBIN_MU_A_1064_CM = 3.5


def _check_range(wavelength_nm: float) -> None:
    if not MIN_WAVELENGTH_NM <= wavelength_nm <= MAX_WAVELENGTH_NM:
        raise ValueError(
            f"wavelength {wavelength_nm} nm is outside the tabulated "
            f"{MIN_WAVELENGTH_NM:g}-{MAX_WAVELENGTH_NM:g} nm"
        )


def melanin_mu_a_cm(wavelength_nm: float) -> float:
    """µa inside a melanosome [1/cm] (Jacques 2013): 552 at 532 nm, 55 at 1064 nm."""
    _check_range(wavelength_nm)
    return float(6.6e11 * wavelength_nm**-3.33)


def background_mu_a_cm(wavelength_nm: float) -> float:
    """µa of bloodless, melanin-free skin [1/cm] (Jacques 1998)."""
    _check_range(wavelength_nm)
    return 0.244 + 85.3 * math.exp(-(wavelength_nm - 154.0) / 66.2)


def reduced_scattering_cm(wavelength_nm: float) -> float:
    """µs' of skin [1/cm] (Jacques 2013, skin average): 42 at 532 nm, 16 at 1064 nm."""
    _check_range(wavelength_nm)
    return float(46.0 * (wavelength_nm / 500.0) ** -1.421)


def _hemoglobin_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([line.split() for line in _PRAHL_HEMOGLOBIN.strip().splitlines()], float)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def hemoglobin_extinction(wavelength_nm: float) -> tuple[float, float]:
    """(HbO2, Hb) molar extinction [cm⁻¹/M] from Prahl's table, 500–1000 nm."""
    if not MIN_WAVELENGTH_NM <= wavelength_nm <= 1000.0:
        raise ValueError(f"Prahl's hemoglobin table covers 500-1000 nm, not {wavelength_nm}")
    nm, oxy, deoxy = _HB
    return float(np.interp(wavelength_nm, nm, oxy)), float(np.interp(wavelength_nm, nm, deoxy))


def hemoglobin_mu_a_cm(wavelength_nm: float, saturation: float) -> float:
    """µa of the hemoglobin in whole blood [1/cm] at oxygen ``saturation`` (0–1)."""
    _check_range(wavelength_nm)
    if not 0.0 <= saturation <= 1.0:
        raise ValueError(f"oxygen saturation is a fraction 0-1, got {saturation}")
    molar = HEMOGLOBIN_G_PER_L / HEMOGLOBIN_G_PER_MOL
    if wavelength_nm <= 1000.0:
        oxy, deoxy = hemoglobin_extinction(wavelength_nm)
        return math.log(10.0) * molar * (saturation * oxy + (1.0 - saturation) * deoxy)
    at_1000 = hemoglobin_mu_a_cm(1000.0, saturation)
    frac = (wavelength_nm - 1000.0) / (MAX_WAVELENGTH_NM - 1000.0)
    return at_1000 + frac * (HEMOGLOBIN_MU_A_1064_CM - at_1000)


def water_mu_a_cm(wavelength_nm: float) -> float:
    """µa of liquid water [1/cm]: 4πk/λ, k interpolated log-linearly (Hale & Querry 1973;
    Segelstein 1981 above 1000 nm)."""
    _check_range(wavelength_nm)
    k = float(np.exp(np.interp(wavelength_nm, _WATER_NM, np.log(_WATER_K))))
    return 4.0 * math.pi * k / (wavelength_nm * 1e-7)


def blood_mu_a_cm(wavelength_nm: float, saturation: float) -> float:
    """µa of whole blood [1/cm]: its hemoglobin plus its water."""
    return hemoglobin_mu_a_cm(wavelength_nm, saturation) + BLOOD_WATER_FRACTION * water_mu_a_cm(
        wavelength_nm
    )


# Hale & Querry (1973) Table, k of water at 25 °C, 500-1000 nm; then Segelstein (1981)
# 1009-1099 nm (his rows, wavelengths rounded to 0.01 nm).
_WATER_NM = np.array(
    [500, 525, 550, 575, 600, 625, 650, 675, 700, 725, 750, 775, 800, 825, 850, 875, 900,
     925, 950, 975, 1000, 1009.25, 1020.94, 1030.39, 1039.92, 1049.54, 1059.25, 1069.05,
     1078.95, 1088.93, 1099.01],
    dtype=np.float64,
)  # fmt: skip
_WATER_K = np.array(
    [1.00e-9, 1.32e-9, 1.96e-9, 3.60e-9, 1.09e-8, 1.39e-8, 1.64e-8, 2.23e-8, 3.35e-8,
     9.15e-8, 1.56e-7, 1.48e-7, 1.25e-7, 1.82e-7, 2.93e-7, 3.91e-7, 4.86e-7, 1.06e-6,
     2.93e-6, 3.48e-6, 2.89e-6, 2.688e-6, 2.352e-6, 2.001e-6, 1.690e-6, 1.419e-6, 1.299e-6,
     1.259e-6, 1.329e-6, 1.499e-6, 1.708e-6],
    dtype=np.float64,
)  # fmt: skip

# Prahl's tabulated molar extinction coefficients for hemoglobin in water,
# columns: wavelength [nm], HbO2 [cm-1/M], Hb [cm-1/M]; the 500-1000 nm rows.
_PRAHL_HEMOGLOBIN = """
500 20932.8 20862
502 20596.4 21832.8
504 20418 22803.6
506 19946 23774.4
508 19996 24745.2
510 20035.2 25773.6
512 20150.4 26936.8
514 20429.2 28100
516 21001.6 29263.2
518 22509.6 30426.4
520 24202.4 31589.6
522 26450.4 32851.2
524 29269.2 34397.6
526 32496.4 35944
528 35990 37490
530 39956.8 39036.4
532 43876 40584
534 46924 42088
536 49752 43592
538 51712 45092
540 53236 46592
542 53292 48148
544 52096 49708
546 49868 51268
548 46660 52496
550 43016 53412
552 39675.2 54080
554 36815.2 54520
556 34476.8 54540
558 33456 54164
560 32613.2 53788
562 32620 52276
564 33915.6 50572
566 36495.2 48828
568 40172 46948
570 44496 45072
572 49172 43340
574 53308 41716
576 55540 40092
578 54728 38467.6
580 50104 37020
582 43304 35676.4
584 34639.6 34332.8
586 26600.4 32851.6
588 19763.2 31075.2
590 14400.8 28324.4
592 10468.4 25470
594 7678.8 22574.8
596 5683.6 19800
598 4504.4 17058.4
600 3200 14677.2
602 2664 13622.4
604 2128 12567.6
606 1789.2 11513.2
608 1647.6 10477.6
610 1506 9443.6
612 1364.4 8591.2
614 1222.8 7762
616 1110 7344.8
618 1026 6927.2
620 942 6509.6
622 858 6193.2
624 774 5906.8
626 707.6 5620
628 658.8 5366.8
630 610 5148.8
632 561.2 4930.8
634 512.4 4730.8
636 478.8 4602.4
638 460.4 4473.6
640 442 4345.2
642 423.6 4216.8
644 405.2 4088.4
646 390.4 3965.08
648 379.2 3857.6
650 368 3750.12
652 356.8 3642.64
654 345.6 3535.16
656 335.2 3427.68
658 325.6 3320.2
660 319.6 3226.56
662 314 3140.28
664 308.4 3053.96
666 302.8 2967.68
668 298 2881.4
670 294 2795.12
672 290 2708.84
674 285.6 2627.64
676 282 2554.4
678 279.2 2481.16
680 277.6 2407.92
682 276 2334.68
684 274.4 2261.48
686 272.8 2188.24
688 274.4 2115
690 276 2051.96
692 277.6 2000.48
694 279.2 1949.04
696 282 1897.56
698 286 1846.08
700 290 1794.28
702 294 1741
704 298 1687.76
706 302.8 1634.48
708 308.4 1583.52
710 314 1540.48
712 319.6 1497.4
714 325.2 1454.36
716 332 1411.32
718 340 1368.28
720 348 1325.88
722 356 1285.16
724 364 1244.44
726 372.4 1203.68
728 381.2 1152.8
730 390 1102.2
732 398.8 1102.2
734 407.6 1102.2
736 418.8 1101.76
738 432.4 1100.48
740 446 1115.88
742 459.6 1161.64
744 473.2 1207.4
746 487.6 1266.04
748 502.8 1333.24
750 518 1405.24
752 533.2 1515.32
754 548.4 1541.76
756 562 1560.48
758 574 1560.48
760 586 1548.52
762 598 1508.44
764 610 1459.56
766 622.8 1410.52
768 636.4 1361.32
770 650 1311.88
772 663.6 1262.44
774 677.2 1213
776 689.2 1163.56
778 699.6 1114.8
780 710 1075.44
782 720.4 1036.08
784 730.8 996.72
786 740 957.36
788 748 921.8
790 756 890.8
792 764 859.8
794 772 828.8
796 786.4 802.96
798 807.2 782.36
800 816 761.72
802 828 743.84
804 836 737.08
806 844 730.28
808 856 723.52
810 864 717.08
812 872 711.84
814 880 706.6
816 887.2 701.32
818 901.6 696.08
820 916 693.76
822 930.4 693.6
824 944.8 693.48
826 956.4 693.32
828 965.2 693.2
830 974 693.04
832 982.8 692.92
834 991.6 692.76
836 1001.2 692.64
838 1011.6 692.48
840 1022 692.36
842 1032.4 692.2
844 1042.8 691.96
846 1050 691.76
848 1054 691.52
850 1058 691.32
852 1062 691.08
854 1066 690.88
856 1072.8 690.64
858 1082.4 692.44
860 1092 694.32
862 1101.6 696.2
864 1111.2 698.04
866 1118.4 699.92
868 1123.2 701.8
870 1128 705.84
872 1132.8 709.96
874 1137.6 714.08
876 1142.8 718.2
878 1148.4 722.32
880 1154 726.44
882 1159.6 729.84
884 1165.2 733.2
886 1170 736.6
888 1174 739.96
890 1178 743.6
892 1182 747.24
894 1186 750.88
896 1190 754.52
898 1194 758.16
900 1198 761.84
902 1202 765.04
904 1206 767.44
906 1209.2 769.8
908 1211.6 772.16
910 1214 774.56
912 1216.4 776.92
914 1218.8 778.4
916 1220.8 778.04
918 1222.4 777.72
920 1224 777.36
922 1225.6 777.04
924 1227.2 776.64
926 1226.8 772.36
928 1224.4 768.08
930 1222 763.84
932 1219.6 752.28
934 1217.2 737.56
936 1215.6 722.88
938 1214.8 708.16
940 1214 693.44
942 1213.2 678.72
944 1212.4 660.52
946 1210.4 641.08
948 1207.2 621.64
950 1204 602.24
952 1200.8 583.4
954 1197.6 568.92
956 1194 554.48
958 1190 540.04
960 1186 525.56
962 1182 511.12
964 1178 495.36
966 1173.2 473.32
968 1167.6 451.32
970 1162 429.32
972 1156.4 415.28
974 1150.8 402.28
976 1144 389.288
978 1136 374.944
980 1128 359.656
982 1120 344.372
984 1112 329.084
986 1102.4 313.796
988 1091.2 298.508
990 1080 283.22
992 1068.8 267.932
994 1057.6 252.648
996 1046.4 237.36
998 1035.2 222.072
1000 1024 206.784
"""

_HB = _hemoglobin_table()
