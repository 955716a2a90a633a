#![allow(clippy::needless_range_loop, clippy::type_complexity)]
//! Every reader column type, block sizes, and each bad input, with the exact error.

mod common;
use common::*;
use embedcluster::io::EmbeddingSource;
use embedcluster::{DType, Error};

fn rows(n: usize, d: usize) -> Vec<Option<Vec<f64>>> {
    (0..n)
        .map(|i| Some((0..d).map(|j| (i * d + j) as f64 * 0.25 - 3.0).collect()))
        .collect()
}

fn flat(rows: &[Option<Vec<f64>>]) -> Vec<f64> {
    rows.iter().flatten().flatten().copied().collect()
}

#[test]
fn parquet_every_layout_and_dtype_reads_back_in_any_block_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(37, 5);
    for layout in [Layout::List, Layout::LargeList, Layout::FixedSize] {
        for dtype in [DType::Float32, DType::Float64] {
            let p = dir.path().join(format!("{layout:?}_{dtype:?}.parquet"));
            write_parquet(&p, &data, layout, dtype, 10);
            let src = EmbeddingSource::open(&p, "embedding").unwrap();
            assert_eq!(
                (src.n_samples(), src.n_features(), src.dtype()),
                (37, 5, dtype)
            );
            for batch in [1, 4, 10, 16, 37, 1000] {
                let got: Vec<f64> = read_all(&src, batch).unwrap();
                assert_eq!(got, flat(&data), "{layout:?} {dtype:?} batch {batch}");
                let got32: Vec<f32> = read_all(&src, batch).unwrap();
                assert!(got32.iter().zip(flat(&data)).all(|(a, b)| *a == b as f32));
            }
            // a second pass gives the same rows (re-iterable)
            let again: Vec<f64> = read_all(&src, 7).unwrap();
            assert_eq!(again, flat(&data));
        }
    }
}

#[test]
fn npy_float32_and_float64_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let x = flat(&rows(23, 4));
    for dtype in [DType::Float32, DType::Float64] {
        let p = dir.path().join(format!("x_{dtype:?}.npy"));
        write_npy(&p, &x, 4, dtype);
        let src = EmbeddingSource::open(&p, "ignored").unwrap();
        assert_eq!(
            (src.n_samples(), src.n_features(), src.dtype()),
            (23, 4, dtype)
        );
        for batch in [1, 5, 23, 100] {
            let got: Vec<f64> = read_all(&src, batch).unwrap();
            assert_eq!(got, x);
        }
    }
}

fn open_err(p: &std::path::Path) -> Error {
    match EmbeddingSource::open(p, "embedding") {
        Ok(src) => read_all::<f32>(&src, 8).expect_err("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn bad_parquet_inputs_give_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name);

    // missing file
    let e = open_err(&p("missing.parquet"));
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.parquet"));

    // missing column
    write_parquet(
        &p("ok.parquet"),
        &rows(5, 3),
        Layout::List,
        DType::Float32,
        10,
    );
    let e = EmbeddingSource::open(p("ok.parquet"), "vector").unwrap_err();
    assert!(
        e.to_string().contains("column `vector`: no such column"),
        "{e}"
    );
    // a column that is not a list of floats
    let e = EmbeddingSource::open(p("ok.parquet"), "name").unwrap_err();
    assert!(
        e.to_string()
            .contains("column `name`: type Utf8 is not a list of float32/float64"),
        "{e}"
    );
    let e = EmbeddingSource::open(p("ok.parquet"), "id").unwrap_err();
    assert!(e.to_string().contains("is not a list of float"), "{e}");

    // ragged rows
    let mut r = rows(20, 3);
    r[13] = Some(vec![1.0, 2.0]);
    write_parquet(&p("ragged.parquet"), &r, Layout::List, DType::Float32, 8);
    let e = open_err(&p("ragged.parquet"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: row 13, column `embedding`: vector has 2 values, expected 3 (ragged rows)",
            p("ragged.parquet").display()
        )
    );

    // null row (list and fixed-size list)
    for layout in [Layout::List, Layout::FixedSize] {
        let mut r = rows(20, 3);
        r[17] = None;
        let f = p(&format!("null_{layout:?}.parquet"));
        write_parquet(&f, &r, layout, DType::Float64, 8);
        let e = open_err(&f);
        assert_eq!(
            e.to_string(),
            format!(
                "{}: row 17, column `embedding`: the vector is null",
                f.display()
            )
        );
    }
    // null first row (the dimension cannot be learned from it)
    let mut r = rows(4, 3);
    r[0] = None;
    write_parquet(&p("null0.parquet"), &r, Layout::List, DType::Float32, 8);
    let e = open_err(&p("null0.parquet"));
    assert!(
        e.to_string()
            .contains("row 0, column `embedding`: the vector is null"),
        "{e}"
    );

    // null element
    let mut r = rows(20, 3);
    r[9].as_mut().unwrap()[2] = -f64::NAN; // marker for a null element
    write_parquet(
        &p("nullelem.parquet"),
        &r,
        Layout::FixedSize,
        DType::Float32,
        8,
    );
    let e = open_err(&p("nullelem.parquet"));
    assert!(
        e.to_string()
            .ends_with("row 9, column `embedding`: element 2 is null"),
        "{e}"
    );

    // NaN, +inf, -inf at a given row and column
    for (v, name) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let mut r = rows(30, 4);
        r[21].as_mut().unwrap()[1] = v;
        let f = p(&format!("nonfinite_{name}.parquet"));
        write_parquet(&f, &r, Layout::List, DType::Float32, 8);
        let e = open_err(&f);
        assert_eq!(
            e.to_string(),
            format!(
                "{}: row 21, column `embedding`[1]: value is {name} (embeddings must be finite)",
                f.display()
            )
        );
    }

    // zero-length vectors
    write_parquet(
        &p("zero.parquet"),
        &vec![Some(vec![]); 3],
        Layout::List,
        DType::Float32,
        8,
    );
    let e = open_err(&p("zero.parquet"));
    assert!(e.to_string().contains("zero-length vector"), "{e}");

    // a file with a schema but no rows
    write_parquet(&p("empty.parquet"), &[], Layout::List, DType::Float32, 8);
    let e = open_err(&p("empty.parquet"));
    assert!(matches!(e, Error::Empty { .. }), "{e}");

    // an empty (0-byte) file, garbage, and a truncated file
    std::fs::write(p("zero_bytes.parquet"), b"").unwrap();
    let e = open_err(&p("zero_bytes.parquet"));
    assert!(matches!(e, Error::Format { .. }), "{e}");
    std::fs::write(
        p("garbage.parquet"),
        b"this is not parquet at all, not even close",
    )
    .unwrap();
    assert!(matches!(
        open_err(&p("garbage.parquet")),
        Error::Format { .. }
    ));
    let full = std::fs::read(p("ok.parquet")).unwrap();
    for cut in [full.len() / 3, full.len() - 10] {
        std::fs::write(p("trunc.parquet"), &full[..cut]).unwrap();
        let e = open_err(&p("trunc.parquet"));
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().contains("trunc.parquet"));
    }
    // corrupt data pages behind a valid footer: an error, never a panic or wrong rows
    let big = rows(400, 8);
    write_parquet(
        &p("big.parquet"),
        &big,
        Layout::FixedSize,
        DType::Float32,
        100,
    );
    let mut bytes = std::fs::read(p("big.parquet")).unwrap();
    for b in bytes[8..400].iter_mut() {
        *b ^= 0x5A;
    }
    std::fs::write(p("corrupt.parquet"), &bytes).unwrap();
    match EmbeddingSource::open(p("corrupt.parquet"), "embedding") {
        Err(e) => assert!(matches!(e, Error::Format { .. }), "{e}"),
        Ok(src) => {
            let r = read_all::<f32>(&src, 64);
            match r {
                Err(e) => assert!(e.to_string().contains("corrupt.parquet"), "{e}"),
                Ok(v) => assert_ne!(v.len(), 0),
            }
        }
    }
}

#[test]
fn bad_npy_inputs_give_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let x = flat(&rows(10, 3));
    write_npy(&p("ok.npy"), &x, 3, DType::Float32);
    let full = std::fs::read(p("ok.npy")).unwrap();
    std::fs::write(p("trunc.npy"), &full[..full.len() - 5]).unwrap();
    let e = EmbeddingSource::open(p("trunc.npy"), "").unwrap_err();
    assert!(
        e.to_string()
            .contains("truncated: header says 10 x 3 float32"),
        "{e}"
    );
    // a NaN in row 7, column 2
    let mut y = x.clone();
    y[7 * 3 + 2] = f64::NAN;
    write_npy(&p("nan.npy"), &y, 3, DType::Float64);
    let e = read_all::<f64>(&EmbeddingSource::open(p("nan.npy"), "").unwrap(), 4).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: row 7, column `npy`[2]: value is NaN (embeddings must be finite)",
            p("nan.npy").display()
        )
    );
    // zero rows
    write_npy(&p("empty.npy"), &[], 3, DType::Float32);
    assert!(matches!(
        EmbeddingSource::open(p("empty.npy"), "").unwrap_err(),
        Error::Empty { .. }
    ));
    // wrong extension
    std::fs::write(p("data.txt"), b"1,2,3").unwrap();
    assert!(EmbeddingSource::open(p("data.txt"), "")
        .unwrap_err()
        .to_string()
        .contains("unknown file type"));
}

/// CSV: header detection, numeric columns only (a string label is skipped), selected
/// columns, blocks of any size equal one read, and precise errors.
#[test]
fn csv_reads_numeric_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let mut text = String::from("name,x,y,z\n");
    let mut want = vec![];
    for i in 0..50 {
        let row = [i as f64 * 0.5, -(i as f64), 1e-3 * i as f64];
        text.push_str(&format!("r{i}, {}, {}, {}\n", row[0], row[1], row[2]));
        want.extend_from_slice(&row);
    }
    std::fs::write(p("a.csv"), &text).unwrap();
    let src = EmbeddingSource::open(p("a.csv"), "embedding").unwrap();
    assert_eq!(
        (src.n_samples(), src.n_features(), src.dtype()),
        (50, 3, DType::Float64)
    );
    for b in [1, 7, 50, 64] {
        assert_eq!(read_all::<f64>(&src, b).unwrap(), want);
    }
    let sel = EmbeddingSource::open(p("a.csv"), "z,x").unwrap();
    let got = read_all::<f64>(&sel, 8).unwrap();
    assert_eq!(got[..4], [want[2], want[0], want[5], want[3]]);
    // no header: every column numeric
    std::fs::write(p("b.csv"), "1,2\n3,4\n").unwrap();
    let src = EmbeddingSource::open(p("b.csv"), "embedding").unwrap();
    assert_eq!(
        read_all::<f32>(&src, 5).unwrap(),
        vec![1.0f32, 2.0, 3.0, 4.0]
    );
    // errors
    let err = |name: &str, body: &str, col: &str| {
        std::fs::write(p(name), body).unwrap();
        match EmbeddingSource::open(p(name), col) {
            Err(e) => e.to_string(),
            Ok(s) => read_all::<f64>(&s, 4).unwrap_err().to_string(),
        }
    };
    assert!(err("c.csv", "a,b\n1,2\n3,inf\n", "embedding")
        .ends_with("c.csv: row 1, column `b`: value is inf (must be finite)"));
    assert!(err("d.csv", "a,b\n1,2\n3,x\n", "embedding")
        .ends_with("d.csv: row 1, column `b`: \"x\" is not a number"));
    assert!(err("e.csv", "a,b\n", "embedding").ends_with("e.csv: file has no rows"));
    assert!(err("f.csv", "a,b\n1,2\n", "q").contains("column `q`: no such column (columns: a, b)"));
    assert!(err("g.csv", "a,b\nx,y\n", "embedding").contains("no numeric columns"));
}
