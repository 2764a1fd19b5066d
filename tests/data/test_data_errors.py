"""Bad input: each kind raises one DataError naming the file/field and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ncvqvae.data import load_dataset, read_series, write_series
from ncvqvae.errors import DataError, NcvqvaeError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _raises(match: str, *args, **kwargs) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        load_dataset(*args, **kwargs)
    assert isinstance(info.value, NcvqvaeError)  # the CLI turns these into one-line messages
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "X_TRAIN.tsv"
    _raises(re.escape(f"{missing}: no such file"), str(missing))


def test_missing_test_file_in_a_folder(tmp_path: Path) -> None:
    write_series(tmp_path / "Solo" / "Solo_TRAIN.tsv", np.zeros((2, 1, 3)), [1, 2])
    _raises("missing file Solo_TEST.<ext> next to Solo_TRAIN", tmp_path / "Solo")


def test_folder_without_dataset_files(tmp_path: Path) -> None:
    (tmp_path / "Empty").mkdir()
    (tmp_path / "Empty" / "notes.md").write_text("hi")
    _raises(r"Empty: expected Empty_TRAIN.<ext> and Empty_TEST.<ext>.*found notes.md", tmp_path / "Empty")


def test_wrong_delimiter_in_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.tsv", "1,0.5,0.7\n2,0.1,0.2\n")
    _raises(r"c.tsv: line 1 holds no '\\t'.*looks ','-separated", path)


def test_ragged_rows_in_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.tsv", "1\t0.5\t0.7\n2\t0.1\t0.2\n1\t0.3\n")
    _raises(r"r.tsv: line 3 has 2 fields but line 1 has 3; expected the same number", path)


def test_non_numeric_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.tsv", "1\t0.5\t0.7\n2\t0.1\tabc\n")
    _raises(r"n.tsv: line 2, field 3: 'abc' is not a number; expected numeric", path)


def test_non_numeric_value_in_ts(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.ts", "@classLabel true a\n@data\n1,2,x:a\n")
    _raises(r"n.ts: line 3, channel 1: .*expected comma-separated numbers", path)


def test_labels_required_but_absent(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.csv", "0.1,0.2\n0.3,0.4\n")
    _raises(
        r"u.csv: the data has no labels but labels are required",
        path,
        label_column="none",
        require_labels=True,
    )
    unlabelled_ts = write_series(tmp_path / "u.ts", np.zeros((2, 1, 3)))
    _raises(r"u.ts: the data has no labels", unlabelled_ts, require_labels=True)


def test_missing_label_in_a_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.csv", "0.1,0.2,a\n0.3,0.4,\n")
    _raises(r"l.csv: line 2 has no label in the last column", path, label_column="last")


def test_wrong_layout_for_npz(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, X=np.zeros((4, 10)))
    _raises(
        r"w.npz: X has shape \(4, 10\) \(2 axes\) but layout='nct' expects 3 axes; choose layout nt", path
    )


def test_unknown_layout(tmp_path: Path) -> None:
    path = write_series(tmp_path / "k.npz", np.zeros((2, 1, 3)))
    _raises(r"k.npz: layout='tnc'; expected one of nct, ntc, nt", path, layout="tnc")


def test_npz_without_expected_keys(tmp_path: Path) -> None:
    path = tmp_path / "k.npz"
    np.savez(path, data=np.zeros((2, 1, 3)))
    _raises(r"k.npz: arrays \['data'\]; expected X_train/y_train/X_test/y_test or X/y", path)


def test_npz_labels_of_wrong_length(tmp_path: Path) -> None:
    path = tmp_path / "y.npz"
    np.savez(path, X=np.zeros((3, 1, 4)), y=np.zeros(2))
    _raises(r"y.npz: y has shape \(2,\) but X holds 3 series", path)


def test_npz_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "o.npz"
    np.savez(path, X=np.array([np.zeros(3), np.zeros(4)], dtype=object))
    _raises(r"o.npz: cannot read .*pad variable-length series with NaN", path)


def test_empty_split(tmp_path: Path) -> None:
    _raises(r"e.tsv: empty split", _write(tmp_path / "e.tsv", "\n\n"))
    npz = tmp_path / "e.npz"
    np.savez(npz, X_train=np.zeros((0, 1, 5)))
    _raises(r"e.npz: empty split \(shape \(0, 1, 5\)\)", npz)
    _raises(r"h.csv: empty split \(only a header line\)", _write(tmp_path / "h.csv", "label,a,b\n"))


def test_unknown_name_suggests_close_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from ncvqvae.data import fetch

    monkeypatch.setattr(fetch, "SOURCES", ("local",))  # no network in a unit test
    _raises(r"'FordAA'.*did you mean FordA", "FordAA")


def test_unknown_extension(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.xlsx", "")
    _raises(r"d.xlsx: unknown file extension '.xlsx'; expected one of .tsv", path)


def test_test_label_unseen_in_train(tmp_path: Path) -> None:
    write_series(tmp_path / "s_TRAIN.tsv", np.zeros((2, 1, 3)), [1, 2])
    write_series(tmp_path / "s_TEST.tsv", np.zeros((2, 1, 3)), [2, 3])
    _raises(r"s_TEST.tsv: labels \[3\] do not occur in .*s_TRAIN.tsv", tmp_path)


def test_variable_length_under_error_policy_names_the_choices(tmp_path: Path) -> None:
    X = np.zeros((2, 1, 5), dtype=np.float32)
    X[1, 0, 3:] = np.nan
    path = write_series(tmp_path / "v.tsv", X, [1, 2])
    _raises(
        r"v.tsv: series lengths vary from 3 to 5; choose length_policy='pad'.*or 'resample'",
        path,
        length_policy="error",
    )


def test_unknown_length_policy(tmp_path: Path) -> None:
    _raises(r"length_policy='trim'; expected one of pad, resample, error", "gen-cbf", length_policy="trim")


def test_ts_timestamps_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.ts", "@timestamps TRUE\n@classlabel true a\n@data\n(0,1),(1,2):a\n")
    _raises(r"t.ts: @timeStamps true is not supported", path)


def test_ts_regression_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.ts", "@targetLabel true\n@data\n1,2:0.5\n")
    _raises(r"r.ts: @targetLabel true marks a regression problem", path)


def test_ts_channel_count_varies(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.ts", "@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n")
    _raises(r"c.ts: line 4 has 1 channels but the first series has 2", path)


def test_ts_undeclared_class(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.ts", "@classLabel true a b\n@data\n1,2:a\n1,2:c\n")
    _raises(r"d.ts: labels \['c'\] are not in @classLabel \(a b\)", path)


def test_ts_without_data_section(tmp_path: Path) -> None:
    _raises(r"x.ts: no @data line", _write(tmp_path / "x.ts", "@problemName x\n"))


def test_relational_arff_rejected(tmp_path: Path) -> None:
    text = (
        "@relation m\n@attribute bag relational\n@attribute t0 numeric\n@end bag\n"
        "@attribute class {a,b}\n@data\n'1\\n2',a\n"
    )
    _raises(
        r"m.arff: line 2: relational \(multivariate\) ARFF is not supported",
        _write(tmp_path / "m.arff", text),
    )


def test_generator_sizes_rejected_for_files(tmp_path: Path) -> None:
    path = write_series(tmp_path / "f.tsv", np.zeros((2, 1, 3)), [1, 2])
    _raises(r"n_train/n_test apply to the built-in generators only", path, n_train=5)


def test_data_dir_that_does_not_exist(tmp_path: Path) -> None:
    _raises(r"data_dir .*nowhere: no such folder", "SomeName", data_dir=tmp_path / "nowhere")


def test_tsv_writer_needs_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"u.tsv: a UCR .tsv file needs a label per series"):
        write_series(tmp_path / "u.tsv", np.zeros((2, 1, 3)))
    with pytest.raises(DataError, match=r"m.csv: csv holds univariate series but X has 2 channels"):
        write_series(tmp_path / "m.csv", np.zeros((2, 2, 3)), [1, 2])


def test_read_series_on_a_folder(tmp_path: Path) -> None:
    (tmp_path / "dir.tsv").mkdir()
    with pytest.raises(DataError, match=r"dir.tsv: file not found \(it is a folder\)"):
        read_series(tmp_path / "dir.tsv")
