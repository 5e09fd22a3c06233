"""The model index and the metafiles in OpenMMLab's format: every config
they name exists, every config of a method folder is listed, every result is
a row of configs/README.md, and mmengine.hub finds configs through them."""
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from mmengine.hub import get_config
from toolrun import ROOT

import mmimb  # noqa: F401

CODE_URL = 'https://github.com/mmimb/mmimb/blob/main/'


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def method_folders():
    return sorted(p for p in (ROOT / 'configs').iterdir()
                  if p.is_dir() and p.name != '_base_')


def metafiles():
    return [ROOT / p for p in load_yaml(ROOT / 'model-index.yml')['Import']]


def readme_tables(text: str):
    """(caption, header, rows) of each table; the caption is the text
    between the previous table and this one."""
    tables, caption, lines = [], [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith('|') and i + 1 < len(lines) and set(
                lines[i + 1].replace('|', '').split()) == {'---'}:
            header = [c.strip() for c in lines[i].strip('|').split('|')]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith('|'):
                rows.append(
                    [c.strip() for c in lines[i].strip('|').split('|')])
                i += 1
            tables.append(('\n'.join(caption), header, rows))
            caption = []
        else:
            caption.append(lines[i])
            i += 1
    return tables


def first_number(cell: str):
    match = re.search(r'-?\d+(?:\.\d+)?', cell)
    return float(match.group()) if match else None


def caption_names(caption: str, config: str) -> bool:
    """Whether a table's caption names ``config``, itself or by a pattern
    such as ``configs/ccar/*_cifar10-lt-if100.py``."""
    names = re.findall(r'`([^`\s]+\.py)`', caption)
    braces = [n for n in names if '{' in n]
    for name in braces:  # a{b,c}d -> adb, acd
        head, alts, tail = re.match(r'(.*?)\{(.*?)\}(.*)', name).groups()
        names += [head + alt + tail for alt in alts.split(',')]
    return any(fnmatch(config, n) or fnmatch(config, 'configs/' + n)
               for n in names)


def test_model_index_imports_one_metafile_per_method_folder():
    assert sorted(metafiles()) == sorted(
        folder / 'metafile.yml' for folder in method_folders())


@pytest.mark.parametrize('folder', method_folders(), ids=lambda p: p.name)
def test_metafile_lists_existing_configs_of_its_folder(folder):
    meta = load_yaml(folder / 'metafile.yml')
    collection, = meta['Collections']
    for key in ('Name', 'Paper', 'README', 'Code'):
        assert collection.get(key), f'{folder.name}: Collection lacks {key}'
    assert collection['Paper']['URL'].startswith('https://arxiv.org/abs/')
    assert (ROOT / collection['README']).is_file()
    code = collection['Code']['URL']
    assert code.startswith(CODE_URL) and (
        ROOT / code[len(CODE_URL):]).is_file(), code
    listed = set()
    for model in meta['Models']:
        assert model['In Collection'] == collection['Name']
        config = ROOT / model['Config']
        assert config.is_file(), f"{model['Name']}: {model['Config']}"
        assert config.parent == folder
        listed.add(config.name)
        metadata = model['Metadata']
        for key in ('Training Data', 'Batch Size', 'Training Resources',
                    'Architecture'):
            assert key in metadata, f"{model['Name']} lacks {key}"
        assert ('Epochs' in metadata) != ('Iterations' in metadata)
    assert listed == {p.name for p in folder.glob('*.py')}


def test_model_names_are_unique_and_the_first_of_a_config_is_its_own():
    names, first = [], {}
    for path in metafiles():
        for model in load_yaml(path)['Models']:
            names.append(model['Name'])
            first.setdefault(model['Config'], model)
    assert len(names) == len(set(names))
    # mmengine.hub reads the first model of a config; that one describes
    # the config as it is, without options or another schedule.
    for config, model in first.items():
        assert model['Name'] == Path(config).stem
        assert 'Config Options' not in model['Metadata']


def test_every_result_is_a_row_of_the_results_readme():
    tables = readme_tables((ROOT / 'configs' / 'README.md').read_text())
    checked = 0
    for path in metafiles():
        for model in load_yaml(path)['Models']:
            for result in model.get('Results', []):
                metrics = result['Metrics']
                matches = [
                    row for caption, header, rows in tables
                    if caption_names(caption, model['Config'])
                    and set(metrics) <= set(header) for row in rows
                    if all(
                        first_number(row[header.index(name)]) == value
                        for name, value in metrics.items())
                ]
                assert matches, (f"{model['Name']}: no row of "
                                 f'configs/README.md with {metrics}')
                checked += 1
    assert checked >= 10


def test_hub_reads_configs_through_the_metafiles(monkeypatch):
    import mmengine.config.utils as config_utils
    read = []
    original = config_utils._get_cfg_metainfo

    def spy(package_path, cfg_path):
        meta = original(package_path, cfg_path)
        read.append(meta['Name'])
        return meta

    monkeypatch.setattr('mmengine.hub.hub._get_cfg_metainfo', spy)
    name = 'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128'
    cfg = get_config(f'mmimb::dfa/{name}.py')
    assert read == [name]
    assert cfg.model.decode_head.type == 'DFAHead'


@pytest.mark.parametrize('folder', method_folders(), ids=lambda p: p.name)
def test_folder_readme_has_a_row_per_model_with_its_results(folder):
    meta = load_yaml(folder / 'metafile.yml')
    text = (folder / 'README.md').read_text()
    assert '<!-- [ALGORITHM] -->' in text and '```bibtex' in text
    (_, header, rows), = readme_tables(text)
    by_name = {row[0]: row for row in rows}
    assert list(by_name) == [m['Name'] for m in meta['Models']]
    for model in meta['Models']:
        row = by_name[model['Name']]
        assert f"({Path(model['Config']).name})" in row[-1]
        for result in model.get('Results', []):
            for name, value in result['Metrics'].items():
                assert first_number(row[header.index(name)]) == value
