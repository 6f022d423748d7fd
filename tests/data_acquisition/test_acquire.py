import functools
import http.server
import threading

import pytest

from kobe_mlops import config
from kobe_mlops.data_acquisition import acquire
from kobe_mlops.data_acquisition.acquire import (
    AcquisitionError,
    DataSource,
    acquire_datasets,
    acquire_file,
    provenance,
    resolve_source,
)
from kobe_mlops.io import sha256_of


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A source folder with two small files whose digests the config is told to expect."""
    source = tmp_path / "source"
    source.mkdir()
    digests = {}
    for name in config.DATASET_FILES.values():
        (source / name).write_bytes(f"contents of {name}".encode())
        digests[name] = sha256_of(source / name)
    monkeypatch.setattr(config, "DATASET_SHA256", digests)
    return source


def test_copies_and_verifies_from_a_folder(fake_source, tmp_path):
    raw = tmp_path / "raw"
    source = resolve_source(str(fake_source))
    acquired = acquire_datasets(source, raw)
    assert set(acquired) == {"dev", "prod"}
    for item in acquired.values():
        assert item.path.read_bytes() == (fake_source / item.name).read_bytes()
        assert item.how == "copied" and item.origin == str(fake_source / item.name)
        assert item.path.stat().st_mode & 0o222 == 0  # raw data is read-only
    params = provenance(source, acquired)
    assert params["data_source"] == str(fake_source) and "data_source" in params["data_source_set_by"]
    assert params["prod_acquisition"] == "copied"
    assert params["prod_origin"] == str(fake_source / config.DATASET_FILES["prod"])


def test_a_verified_raw_file_is_reused_not_rewritten_and_recorded_so(fake_source, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    mtime = acquire_datasets(resolve_source(str(fake_source)), raw)["dev"].path.stat().st_mtime_ns
    monkeypatch.delenv(config.DATA_SOURCE_ENV, raising=False)
    default = resolve_source("")  # the canonical URL: offline, nothing is fetched from it
    acquired = acquire_datasets(default, raw)
    assert acquired["dev"].path.stat().st_mtime_ns == mtime
    params = provenance(default, acquired)
    assert config.CANONICAL_DATA_URL not in " ".join(params.values())
    # The raw file, not the source it once came from.
    assert params["dev_acquisition"] == "reused" and params["dev_origin"] == str(raw / config.DATASET_FILES["dev"])
    assert params["dev_sha256"] == config.DATASET_SHA256[config.DATASET_FILES["dev"]]


def test_digest_mismatch_is_refused_and_leaves_nothing(fake_source, tmp_path):
    name = config.DATASET_FILES["dev"]
    (fake_source / name).write_bytes(b"tampered")
    with pytest.raises(AcquisitionError, match=f"{name}.*SHA-256"):
        acquire_file(name, resolve_source(str(fake_source)), tmp_path)
    assert list(tmp_path.iterdir()) == [fake_source]


def test_missing_folder_and_missing_file_name_the_problem(fake_source, tmp_path):
    with pytest.raises(AcquisitionError, match="not a folder or URL"):
        acquire_datasets(resolve_source(str(tmp_path / "nowhere")), tmp_path / "raw")
    (fake_source / config.DATASET_FILES["prod"]).unlink()
    with pytest.raises(AcquisitionError, match="has no file dataset_kobe_prod.parquet"):
        acquire_datasets(resolve_source(str(fake_source)), tmp_path / "raw")


def test_source_precedence_and_a_relative_folder_taken_from_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as a kernel started in notebooks/: the cwd plays no part
    source = resolve_source("../shared/no-such-folder")
    assert source.location == str(config.PROJECT_ROOT.parent / "shared" / "no-such-folder")
    with pytest.raises(AcquisitionError) as error:
        acquire_datasets(source, tmp_path / "raw")
    assert source.location in str(error.value) and "notebook parameter data_source" in str(error.value)
    monkeypatch.setenv(config.DATA_SOURCE_ENV, "/data")  # the variable, unless a source is given
    assert resolve_source("") == DataSource("/data", f"${config.DATA_SOURCE_ENV}")
    assert resolve_source("/explicit").location == "/explicit"
    monkeypatch.delenv(config.DATA_SOURCE_ENV)
    assert resolve_source(None).location == config.CANONICAL_DATA_URL


def test_downloads_from_a_base_url(fake_source, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(fake_source))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        acquired = acquire_datasets(resolve_source(url), tmp_path / "raw")
    finally:
        server.shutdown()
    assert acquired["prod"].origin == url + config.DATASET_FILES["prod"] and acquired["prod"].how == "downloaded"
    assert acquired["prod"].path.read_bytes() == (fake_source / config.DATASET_FILES["prod"]).read_bytes()


def test_unreachable_url_says_how_to_work_offline(fake_source, tmp_path, monkeypatch):
    monkeypatch.setattr(acquire, "DOWNLOAD_TIMEOUT_SECONDS", 2)
    with pytest.raises(AcquisitionError, match="--data-source"):
        acquire_datasets(resolve_source("http://127.0.0.1:9/"), tmp_path / "raw")  # port 9: nothing listens
    assert not (tmp_path / "raw" / config.DATASET_FILES["dev"]).exists()
