"""The dataset converters on fixtures of their source formats and on the real
EBHI-Seg sample: labels pixel by pixel, split rules, resumption, errors."""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from toolrun import check_ok, run_tool

from mmimb.datasets import conversion
from mmimb.datasets.bcss import DEFAULT_GROUPING, TEST_SITES, convert_bcss
from mmimb.datasets.conversion import (ConversionError, assign_splits,
                                       split_counts)
from mmimb.datasets.crag import convert_crag
from mmimb.datasets.ebhi_seg import (EBHI_CATEGORIES, convert_ebhi_seg,
                                     ebhi_tasks)

SPLITS = ('train', 'val', 'test')


def read(path) -> np.ndarray:
    """Read with PIL, independently of the converters' OpenCV reader."""
    return np.asarray(Image.open(path))


def all_files(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*')) if p.is_file()
        and p.name != 'summary.json' and '.convert_state' not in p.parts
    }


@pytest.fixture
def tool(load_script):
    return lambda name: load_script(f'tools/dataset_converters/{name}.py')


# ---------------------------------------------------------------- helpers


def test_split_counts_sum_and_match_hand_worked_cases():
    assert split_counts(10, [0.4, 0.4, 0.2]) == [4, 4, 2]
    assert split_counts(7, [0.4, 0.4, 0.2]) == [3, 3, 1]
    assert split_counts(1, [0.4, 0.4, 0.2]) == [1, 0, 0]
    assert split_counts(6, [0.75, 0.25]) == [5, 1]
    for total in range(30):
        assert sum(split_counts(total, [0.4, 0.4, 0.2])) == total


def test_assign_splits_is_seeded_and_order_free():
    units = [f'u{i}' for i in range(20)]
    fractions = dict(train=0.5, val=0.25, test=0.25)
    a = assign_splits(units, fractions, seed=1, stratum='x')
    assert a == assign_splits(units[::-1], fractions, seed=1, stratum='x')
    assert a != assign_splits(units, fractions, seed=2, stratum='x')
    assert sorted(a.values()).count('train') == 10


# ------------------------------------------------------------------- BCSS


def expected_bcss_tile(mask: np.ndarray, x: int, y: int,
                       size: int) -> np.ndarray:
    code_to_label = {}
    classes = [k for k in DEFAULT_GROUPING if k != 'ignore']
    for name, codes in DEFAULT_GROUPING.items():
        for code in codes:
            code_to_label[code] = 255 if name == 'ignore' else classes.index(
                name)
    tile = np.full((size, size), 255, np.uint8)
    for i in range(size):
        for j in range(size):
            if y + i < mask.shape[0] and x + j < mask.shape[1]:
                tile[i, j] = code_to_label[int(mask[y + i, x + j])]
    return tile


def test_bcss_labels_tiles_and_splits(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(tmp_path / 'src')
    out = tmp_path / 'out'
    summary = convert_bcss(
        str(tmp_path / 'src'), str(out), tile_size=64, val_fraction=0.25,
        progress=False)
    outputs = dataset_fixtures.list_outputs(out)
    name_re = re.compile(r'^(TCGA-(\w\w)-(\w{4})-DX1_xmin\d+_ymin\d+_'
                         r'MPP-0\.2500)_x(\d+)_y(\d+)$')
    split_of_case, rois_seen, total_labelled = {}, set(), 0
    for split, names in outputs.items():
        for name in names:
            roi, site, case, x, y = name_re.match(name).groups()
            split_of_case.setdefault(f'{site}-{case}', set()).add(split)
            assert (split == 'test') == (site in TEST_SITES)
            rois_seen.add(roi)
            mask = read(release / 'masks' / f'{roi}.png')
            image = read(release / 'rgbs_colorNormalized' / f'{roi}.png')
            label = read(out / 'ann_dir' / split / f'{name}.png')
            tile = read(out / 'img_dir' / split / f'{name}.png')
            np.testing.assert_array_equal(
                label, expected_bcss_tile(mask, int(x), int(y), 64))
            part = image[int(y):int(y) + 64, int(x):int(x) + 64]
            np.testing.assert_array_equal(
                tile[:part.shape[0], :part.shape[1]], part)
            assert (label != 255).any()
            total_labelled += int((label != 255).sum())
    assert all(len(s) == 1 for s in split_of_case.values()), split_of_case
    assert split_of_case['AR-A1AR'] in ({'train'}, {'val'})
    assert {min(s) for s in split_of_case.values()} == set(SPLITS)
    assert len(rois_seen) == len(dataset_fixtures.BCSS_ROIS)
    # Every position of the regular grid plus the edge-flush tile: a
    # 150 x 130 region gives rows 0, 64, 86 and columns 0, 64, 66.
    a1 = [n for n in outputs['train'] + outputs['val'] if 'A1-A0SK' in n]
    assert {tuple(map(int, re.findall(r'_x(\d+)_y(\d+)$', n)[0]))
            for n in a1} <= {(x, y) for x in (0, 64, 66)
                             for y in (0, 64, 86)}
    counted = sum(
        sum(s['pixels_per_class'].values())
        for s in summary['splits'].values())
    assert counted == total_labelled
    assert summary['images_total'] == sum(map(len, outputs.values()))
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['splits'] == summary['splits']
    assert saved['split_rule']['test_sites'] == sorted(TEST_SITES)


def test_bcss_stride_grouping_and_unpaired_files(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(
        tmp_path, rois=dataset_fixtures.BCSS_ROIS[:2])
    extra = 'TCGA-A1-A0SK-DX1_xmin1_ymin2_MPP-0.2500.png'
    (release / 'rgbs_colorNormalized' / extra).write_bytes(
        (release / 'rgbs_colorNormalized' /
         dataset_fixtures.bcss_file_name(*dataset_fixtures.BCSS_ROIS[0][:3])
         ).read_bytes())
    grouping = {'tumor': [1], 'ignore': [0] + list(range(2, 22))}
    summary = convert_bcss(
        str(release), str(tmp_path / 'out'), tile_size=64, stride=32,
        grouping=grouping, val_fraction=0.0, progress=False)
    assert summary['classes'] == ['tumor']
    assert summary['skipped_by_reason'].get('image without mask') == 1
    names = dataset_fixtures.list_outputs(tmp_path / 'out')['train']
    xs = {int(re.search(r'_x(\d+)_', n).group(1)) for n in names}
    assert xs <= {0, 32, 64, 66} and 32 in xs
    for name in names:
        label = read(tmp_path / 'out' / 'ann_dir' / 'train' / f'{name}.png')
        assert set(np.unique(label)) <= {0, 255}


# ------------------------------------------------------------------- CRAG


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_crag_binary_labels_and_splits(tmp_path, dataset_fixtures, dtype):
    release = dataset_fixtures.write_crag_release(
        tmp_path, annotation_dtype=dtype)
    out = tmp_path / 'out'
    summary = convert_crag(str(release), str(out), val_count=1,
                           progress=False)
    outputs = dataset_fixtures.list_outputs(out)
    assert len(outputs['train']) == 3 and len(outputs['val']) == 1
    assert outputs['test'] == ['test_1', 'test_2']
    assert not set(outputs['train']) & set(outputs['val'])
    for split, names in outputs.items():
        for name in names:
            src = 'valid' if split == 'test' else 'train'
            annotation = read(release / 'CRAG' / src / 'Annotation' /
                              f'{name}.png')
            label = read(out / 'ann_dir' / split / f'{name}.png')
            expected = [[1 if v != 0 else 0 for v in row]
                        for row in annotation.tolist()]
            np.testing.assert_array_equal(label, expected)
            np.testing.assert_array_equal(
                read(out / 'img_dir' / split / f'{name}.png'),
                read(release / 'CRAG' / src / 'Images' / f'{name}.png'))
    assert summary['source_counts'] == {'train': 4, 'test': 2}


# ---------------------------------------------------------------- EBHI-Seg


def expected_ebhi(mask: np.ndarray, label: int, band: int) -> np.ndarray:
    h, w = mask.shape
    gland = mask >= 128
    out = np.where(gland, label, 0).astype(np.uint8)
    for i in range(h):
        for j in range(w):
            window = gland[max(i - band, 0):i + band + 1,
                           max(j - band, 0):j + band + 1]
            if band and window.any() and not window.all():
                out[i, j] = 255
    return out


@pytest.mark.parametrize('band', [0, 2])
def test_ebhi_labels_with_edge_band(tmp_path, dataset_fixtures, band):
    release = dataset_fixtures.write_ebhi_release(tmp_path)
    out = tmp_path / 'out'
    summary = convert_ebhi_seg(str(release), str(out), edge_band=band,
                               progress=False)
    slug_to_folder = {v: k for k, v in EBHI_CATEGORIES.items()}
    outputs = dataset_fixtures.list_outputs(out)
    for split, names in outputs.items():
        for name in names:
            slug, stem = re.match(r'^(.*)_(GT.*)$', name).groups()
            folder = slug_to_folder[slug]
            mask = read(release / folder / 'label' / f'{stem}.png')
            label = list(EBHI_CATEGORIES).index(folder) + 1
            np.testing.assert_array_equal(
                read(out / 'ann_dir' / split / f'{name}.png'),
                expected_ebhi(mask, label, band))
    missing = sorted(Path(s['source']).name for s in summary['skipped']
                     if s['reason'] == 'image without mask')
    assert missing == sorted(f'{s}.png'
                             for s in dataset_fixtures.EBHI_UNMASKED)


def test_ebhi_split_is_stratified_seeded_and_disjoint(tmp_path,
                                                      dataset_fixtures):
    counts = {c: 10 for c in EBHI_CATEGORIES}
    release = dataset_fixtures.write_ebhi_release(tmp_path, counts=counts)
    runs = {}
    for seed, group_by in ((0, 'image'), (0, 'case'), (1, 'image')):
        out = tmp_path / f'out{seed}{group_by}'
        summary = convert_ebhi_seg(str(release), str(out), seed=seed,
                                   group_by=group_by, progress=False)
        outputs = dataset_fixtures.list_outputs(out)
        names = [n for names in outputs.values() for n in names]
        assert len(names) == len(set(names)) == 60
        runs[seed, group_by] = outputs
        if group_by == 'image':
            for category in EBHI_CATEGORIES:
                assert list(summary['images_per_category'][category].values(
                )) == [4, 4, 2]
        else:
            case_split = {}
            for split, split_names in outputs.items():
                for n in split_names:
                    case = n.rsplit('_', 1)[1].split('-')[0]
                    case_split.setdefault(case, set()).add(split)
            assert all(len(s) == 1 for s in case_split.values())
    assert runs[0, 'image'] != runs[1, 'image']
    again = tmp_path / 'again'
    convert_ebhi_seg(str(release), str(again), seed=0, progress=False)
    assert dataset_fixtures.list_outputs(again) == runs[0, 'image']


def test_ebhi_case_in_two_categories_gets_one_split(tmp_path,
                                                    dataset_fixtures):
    counts = {c: 10 for c in EBHI_CATEGORIES}
    release = dataset_fixtures.write_ebhi_release(tmp_path, counts=counts)
    shared = dataset_fixtures.ebhi_stem(dataset_fixtures.EBHI_SHARED_CASE[0],
                                        0).split('-')[0]
    fractions = dict(train=0.4, val=0.4, test=0.2)
    for seed in range(8):
        tasks, _, _ = ebhi_tasks(str(release), fractions, seed, 'case')
        case_split, case_slugs = {}, {}
        for task in tasks:
            slug, stem = re.match(r'^(.*)_(GT.*)$', task.key).groups()
            case_split.setdefault(stem.split('-')[0], set()).add(task.split)
            case_slugs.setdefault(stem.split('-')[0], set()).add(slug)
        assert case_slugs[shared] == {'low_grade_IN', 'serrated_adenoma'}
        assert all(len(s) == 1 for s in case_split.values()), seed


def test_ebhi_real_sample(tool, tmp_path, shared_data):
    release = shared_data / 'ebhi_seg_sample' / 'EBHI-SEG'
    out = tmp_path / 'out'
    summary = tool('ebhi_seg').main([str(release), '-o', str(out)]) or \
        json.loads((out / 'summary.json').read_text())
    missing = sorted(Path(s['source']).name for s in summary['skipped']
                     if s['reason'] == 'image without mask')
    assert missing == ['GT2012149-2-400-001.png', 'GTGT2012149-2-400-001.png']
    assert summary['images_total'] == 60
    slug_to_folder = {v: k for k, v in EBHI_CATEGORIES.items()}
    for split in SPLITS:
        for path in sorted((out / 'ann_dir' / split).glob('*.png')):
            slug, stem = re.match(r'^(.*)_(GT.*)$', path.stem).groups()
            mask = read(release / slug_to_folder[slug] / 'label' /
                        f'{stem}.png')
            label = list(EBHI_CATEGORIES).index(slug_to_folder[slug]) + 1
            np.testing.assert_array_equal(
                read(path), np.where(mask >= 128, label, 0))
    for category in EBHI_CATEGORIES:
        assert list(summary['images_per_category'][category].values()) == [
            4, 4, 2]


# ------------------------------------------------------------- resumption


CONVERTERS = {
    'bcss': lambda fx, root, out: convert_bcss(
        str(fx.write_bcss_release(root)), str(out), tile_size=64,
        val_fraction=0.25, progress=False),
    'crag': lambda fx, root, out: convert_crag(
        str(fx.write_crag_release(root)), str(out), progress=False),
    'ebhi_seg': lambda fx, root, out: convert_ebhi_seg(
        str(fx.write_ebhi_release(root)), str(out), progress=False),
}


@pytest.mark.parametrize('name', sorted(CONVERTERS))
def test_interrupted_run_resumes_to_identical_output(tmp_path, monkeypatch,
                                                     dataset_fixtures, name):
    convert = CONVERTERS[name]
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise KeyboardInterrupt('simulated interruption')
        real_replace(src, dst)

    monkeypatch.setattr(conversion.os, 'replace', replace)
    reference = tmp_path / 'reference'
    fail_at = None
    convert(dataset_fixtures, tmp_path / 'src_ref', reference)
    # Interrupt halfway, between the temporary file and its rename.
    fail_at, calls[:] = len(calls) // 2, []
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        convert(dataset_fixtures, tmp_path / 'src', out)
    monkeypatch.setattr(conversion.os, 'replace', real_replace)
    assert not [p for p in out.rglob('*') if p.name.endswith('.part')]
    assert not (out / 'summary.json').exists()
    # A killed process leaves its temporary file: the next run removes it.
    stale = out / 'img_dir' / 'train' / '.x.png.part'
    stale.write_bytes(b'half')

    summary = convert(dataset_fixtures, tmp_path / 'src', out)
    assert not stale.exists()
    assert summary['images_resumed'] >= 1
    assert summary['images_written'] >= 1
    assert all_files(out) == all_files(reference)
    ref_summary = json.loads((reference / 'summary.json').read_text())
    assert summary['splits'] == ref_summary['splits']

    again = convert(dataset_fixtures, tmp_path / 'src', out)
    assert again['images_written'] == 0
    assert again['images_resumed'] == summary['images_total']


def test_rerun_after_sources_changed_moves_images_between_splits(
        tmp_path, dataset_fixtures):
    # More source files change the seeded split of images converted before.
    counts = {c: 14 for c in EBHI_CATEGORIES}
    grown = dataset_fixtures.write_ebhi_release(tmp_path / 'grown',
                                                counts=counts)
    shutil.copytree(grown, tmp_path / 'first' / 'EBHI-SEG')
    first = tmp_path / 'first' / 'EBHI-SEG'
    for c, category in enumerate(EBHI_CATEGORIES):
        for n in range(10, 14):
            for sub in ('image', 'label'):
                stem = dataset_fixtures.ebhi_stem(c, n)
                (first / category / sub / f'{stem}.png').unlink()
    out, fresh = tmp_path / 'out', tmp_path / 'fresh'
    convert_ebhi_seg(str(first), str(out), progress=False)
    before = dataset_fixtures.list_outputs(out)
    summary = convert_ebhi_seg(str(grown), str(out), progress=False)
    reference = convert_ebhi_seg(str(grown), str(fresh), progress=False)
    after = dataset_fixtures.list_outputs(fresh)
    moved = [(split, n) for split in SPLITS for n in before[split]
             if n not in after[split]]
    assert moved
    assert all_files(out) == all_files(fresh)
    assert summary['splits'] == reference['splits']
    assert summary['images_total'] == sum(map(len, after.values()))


def test_other_options_into_same_folder_are_refused(tmp_path,
                                                    dataset_fixtures):
    release = dataset_fixtures.write_crag_release(tmp_path)
    convert_crag(str(release), str(tmp_path / 'out'), progress=False)
    with pytest.raises(ConversionError, match='val_count'):
        convert_crag(str(release), str(tmp_path / 'out'), val_count=1,
                     progress=False)


def test_bcss_grouping_in_other_order_is_refused(tmp_path, dataset_fixtures):
    # The grouping's order gives the label numbers: the same classes in
    # another order are another conversion.
    release = dataset_fixtures.write_bcss_release(
        tmp_path, rois=dataset_fixtures.BCSS_ROIS[:1])
    rest = [0] + list(range(3, 22))
    kwargs = dict(tile_size=64, val_fraction=0.0, progress=False)
    convert_bcss(str(release), str(tmp_path / 'out'),
                 grouping={'tumor': [1], 'stroma': [2], 'ignore': rest},
                 **kwargs)
    with pytest.raises(ConversionError, match='grouping'):
        convert_bcss(str(release), str(tmp_path / 'out'),
                     grouping={'stroma': [2], 'tumor': [1], 'ignore': rest},
                     **kwargs)


def test_bcss_test_sites_absent_from_release_are_refused(tmp_path,
                                                         dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(tmp_path)
    with pytest.raises(ConversionError, match=r"\['ll', 'ol'\].*'OL'"):
        convert_bcss(str(release), str(tmp_path / 'out'), tile_size=64,
                     test_sites=['ol', 'll'], progress=False)
    assert not (tmp_path / 'out' / 'summary.json').exists()


# ------------------------------------------------------------------ errors


def test_bcss_errors_name_the_file(tmp_path, dataset_fixtures):
    with pytest.raises(ConversionError, match='not a BCSS release'):
        convert_bcss(str(tmp_path / 'nothing'), str(tmp_path / 'o'))
    release = dataset_fixtures.write_bcss_release(
        tmp_path / 'a', rois=dataset_fixtures.BCSS_ROIS[:2])
    bad_name = release / 'masks' / 'slide_7.png'
    bad_name.write_bytes(b'')
    with pytest.raises(ConversionError, match='slide_7.png'):
        convert_bcss(str(release), str(tmp_path / 'o1'), progress=False)
    bad_name.unlink()

    name = dataset_fixtures.bcss_file_name(*dataset_fixtures.BCSS_ROIS[0][:3])
    mask_path = release / 'masks' / name
    good = mask_path.read_bytes()
    mask_path.write_bytes(good[:len(good) // 3])
    with pytest.raises(ConversionError, match=re.escape(name)):
        convert_bcss(str(release), str(tmp_path / 'o2'), tile_size=64,
                     progress=False)

    mask = np.full((10, 10), 30, np.uint8)
    Image.fromarray(mask).save(mask_path)
    with pytest.raises(ConversionError, match=re.escape(name)):
        convert_bcss(str(release), str(tmp_path / 'o3'), tile_size=64,
                     progress=False)
    mask_path.write_bytes(good)
    image = read(release / 'rgbs_colorNormalized' / name)
    Image.fromarray(image[:-1]).save(mask_path.parent.parent /
                                     'rgbs_colorNormalized' / name)
    with pytest.raises(ConversionError, match='expected the same size'):
        convert_bcss(str(release), str(tmp_path / 'o4'), tile_size=64,
                     progress=False)
    with pytest.raises(ConversionError, match='code 1 twice'):
        convert_bcss(str(release), str(tmp_path / 'o5'),
                     grouping={'a': [1], 'b': [1]})


def test_bcss_unknown_code_is_reported(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(
        tmp_path, rois=dataset_fixtures.BCSS_ROIS[:1])
    name = dataset_fixtures.bcss_file_name(*dataset_fixtures.BCSS_ROIS[0][:3])
    mask = read(release / 'masks' / name).copy()
    mask[5, 5] = 30
    Image.fromarray(mask).save(release / 'masks' / name)
    with pytest.raises(ConversionError, match=r'codes \[30\]'):
        convert_bcss(str(release), str(tmp_path / 'o'), tile_size=64,
                     progress=False)


def test_crag_and_ebhi_errors(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_crag_release(tmp_path / 'c')
    annotation = release / 'CRAG' / 'valid' / 'Annotation'
    for p in annotation.iterdir():
        p.unlink()
    annotation.rmdir()
    with pytest.raises(ConversionError, match='lacks Images/ or Annotation/'):
        convert_crag(str(release), str(tmp_path / 'o'))

    empty = tmp_path / 'empty' / 'EBHI-SEG' / 'Polyp'
    for sub in ('image', 'label'):
        (empty / sub).mkdir(parents=True)
    with pytest.raises(ConversionError, match='no ebhi_seg image'):
        convert_ebhi_seg(str(empty.parent), str(tmp_path / 'o1'))

    ebhi = dataset_fixtures.write_ebhi_release(tmp_path / 'e')
    (ebhi / 'Unknown').mkdir()
    with pytest.raises(ConversionError, match='Unknown'):
        convert_ebhi_seg(str(ebhi), str(tmp_path / 'o2'))
    (ebhi / 'Unknown').rmdir()
    mask = next((ebhi / 'Polyp' / 'label').iterdir())
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(mask)
    with pytest.raises(ConversionError, match=re.escape(mask.name)):
        convert_ebhi_seg(str(ebhi), str(tmp_path / 'o3'), progress=False)


def test_cli_reports_errors_in_one_line(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        tool('crag').run_converter_cli(
            lambda: tool('crag').main([str(tmp_path), '-o',
                                       str(tmp_path / 'o')]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(tmp_path) in err


def test_workers_give_the_same_output(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(tmp_path / 'src')
    for workers in (0, 2):
        convert_bcss(str(release), str(tmp_path / f'w{workers}'),
                     tile_size=64, workers=workers, progress=False)
    assert all_files(tmp_path / 'w0') == all_files(tmp_path / 'w2')


def test_bcss_command_line_as_a_user_runs_it(tmp_path, dataset_fixtures):
    release = dataset_fixtures.write_bcss_release(tmp_path / 'src')
    out = tmp_path / 'out'
    result = run_tool('tools/dataset_converters/bcss.py', tmp_path / 'src',
                      '-o', out, '--tile-size', '64', '--workers', '2')
    check_ok(result)
    assert 'bcss: ' in result.stdout and 'converting bcss' in result.stderr
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['options']['tile_size'] == 64
    assert summary['images_total'] > len(dataset_fixtures.BCSS_ROIS)
    failed = run_tool('tools/dataset_converters/bcss.py', release / 'masks',
                      '-o', tmp_path / 'o2')
    assert failed.returncode == 2
    assert failed.stderr.startswith('error: ') and 'masks' in failed.stderr
