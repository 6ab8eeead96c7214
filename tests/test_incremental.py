"""Per-service reuse and the stat index: an incremental build equals a cold one, byte for byte.

Each test builds the real catalog with the cache on, edits the catalog (one
service, a service others link to, a deletion, a rename, a user template),
builds again, and compares the output folder with a cold build of the edited
catalog (``S402GEN_CACHE_DIR=off``). A render key that missed an input the
files show, or a stat index that vouched for a file it should not, leaves a
stale file there and fails the comparison. Counting the doc pages rendered
shows that the reuse is real: only the edited service's page is rendered.
"""

from __future__ import annotations

import base64
import json
import os
import types
from pathlib import Path

import pytest
import yaml

from s402gen import render, statcache

from .conftest import CATALOG, run_cli, write_catalog

EDITED = "face-database-list"


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under ``out``, ``{relative posix path: bytes}``."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def cold(project: Path, data: dict, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict:
    """The files a cold build of ``data`` writes (no cache at all), in ``project/cold``."""
    write_catalog(project / "cold.yaml", data)
    with monkeypatch.context() as scoped:
        scoped.setenv("S402GEN_CACHE_DIR", "off")
        code, _, err = run_cli("build", "cold.yaml", "--out", "cold", *extra, cwd=project)
    assert code == 0, err
    return snapshot(project / "cold")


@pytest.fixture
def built(tmp_path: Path, real_catalog_data: dict) -> tuple[Path, dict]:
    """The real catalog built once into ``generated/`` with the cache on."""
    write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    code, _, err = run_cli("build", cwd=tmp_path)
    assert code == 0, err
    return tmp_path, real_catalog_data


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The service ids whose doc page is rendered (Jinja called) from now on."""
    rendered: list[str] = []
    original = render._render

    def counting(template, **context):
        if template.name == "doc_page.html.jinja":
            rendered.append(context["service"].route.service_id)
        return original(template, **context)

    monkeypatch.setattr(render, "_render", counting)
    return rendered


def service(data: dict, service_id: str) -> dict:
    return next(s for s in data["services"] if s["id"] == service_id)


def rebuild(project: Path, data: dict, *extra: str) -> tuple[set[str], set[str]]:
    """Build the edited catalog in place; the files it wrote and removed."""
    write_catalog(project / "catalog.yaml", data)
    code, out, err = run_cli("build", "-v", *extra, cwd=project)
    assert code == 0, err
    written = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("wrote ")}
    removed = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("removed ")}
    return written, removed


def test_editing_one_service_renders_and_writes_only_what_it_feeds(
    built, pages, monkeypatch
) -> None:
    project, data = built
    before = snapshot(project / "generated")
    service(data, EDITED)["summaryZh"] = "列出账号下全部的人脸数据库。"
    service(data, EDITED)["action"] = "ListFaceDbsV2"
    written, removed = rebuild(project, data)
    assert pages == [EDITED]  # no other page was rendered
    after = snapshot(project / "generated")
    assert after == cold(project, data, monkeypatch)
    changed = {f"generated/{p}" for p in after if before.get(p) != after[p]}
    assert written == changed and not removed
    assert {
        f"generated/docs/tools/{EDITED}.html",
        f"generated/catalog/services/{EDITED}.json",
        "generated/catalog/catalog.json",
        "generated/mcp/tools.json",
        "generated/openapi.json",
        "generated/manifest.json",
    } <= written
    assert not any(EDITED not in p for p in written if "/tools/" in p or "/services/" in p)


def test_the_stat_index_is_read_after_the_compile_unless_a_hit_needs_it(built, monkeypatch) -> None:
    """The index (12 MiB at 10,000 services) is read before the compile only to confirm a
    whole-run hit; an edit, or an edit undone (the input cache has an entry for that
    version, but the output holds another), reads it once the compile is done."""
    from s402gen import pipeline

    project, data = built
    events: list[str] = []
    for module, name in ((statcache, "load"), (pipeline, "compile_catalog")):
        original = getattr(module, name)

        def noting(*args, original=original, name=name, **kwargs):
            events.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, noting)
    action = service(data, EDITED)["action"]
    service(data, EDITED)["action"] = "ListFaceDbsV2"
    rebuild(project, data)  # an edit: no input-cache entry
    assert events == ["compile_catalog", "load"]
    events.clear()
    service(data, EDITED)["action"] = action
    rebuild(project, data)  # undone: an entry whose manifest is not the output's
    assert events == ["compile_catalog", "load"]
    events.clear()
    rebuild(project, data)  # a hit: the index vouches for the files unread
    assert events == ["load"]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The service ids whose part of each file every service feeds is made (not copied
    from the file as it is) from now on: ``{what: [service id, ...]}``."""
    from s402gen import doc_site, openapi

    calls: dict[str, list[str]] = {}

    def counting(module, name: str) -> None:
        original = getattr(module, name)

        def count(svc, *args, **kwargs):
            calls.setdefault(name, []).append(svc.route.service_id)
            return original(svc, *args, **kwargs)

        monkeypatch.setattr(module, name, count)

    counting(render, "mcp_tool")  # tools.json
    counting(render, "catalog_entry")  # catalog.json and the entry files
    counting(openapi, "_tool_operation")  # openapi.json's path items
    counting(doc_site, "search_entry")  # the doc index's search data
    return calls


def test_an_edit_makes_only_the_edited_services_part_of_the_shared_files(
    built, made, monkeypatch
) -> None:
    """catalog.json, tools.json, openapi.json, offers.json and the search data take every
    other service's part from the file as it is (where the index says it lies)."""
    project, data = built
    service(data, EDITED)["action"] = "ListFaceDbsV2"
    rebuild(project, data)
    assert made == {
        "mcp_tool": [EDITED],
        "catalog_entry": [EDITED],
        "_tool_operation": [EDITED],
        "search_entry": [EDITED],
    }
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)
    made.clear()
    service(data, EDITED)["titleZh"] = "数据库列表"  # again, from the spans the last edit recorded
    rebuild(project, data)
    assert made["mcp_tool"] == [EDITED] and made["_tool_operation"] == [EDITED]
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_a_shared_file_changed_behind_the_index_is_made_whole_again(
    built, made, monkeypatch
) -> None:
    """A file every service feeds whose stat is not the recorded one lends nothing: each
    service's part of it is made again (here tools.json, edited by hand, then forced)."""
    project, data = built
    tools = project / "generated" / "mcp" / "tools.json"
    tools.write_bytes(tools.read_bytes().replace(b'"title": "', b'"title": "X', 1))
    service(data, EDITED)["summaryZh"] = "改了。"
    rebuild(project, data, "--force")
    assert len(made["mcp_tool"]) == len(data["services"])
    assert made["_tool_operation"] == [EDITED]  # openapi.json is as recorded
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_a_member_whose_places_do_not_match_its_tags_lends_nothing(
    built, made, private_cache, monkeypatch
) -> None:
    """An index whose spans of one file lost a member's place is not read out of step (a
    member's bytes taken from another's place): that file's parts are all made again."""
    project, data = built
    (index_file,) = (private_cache / statcache.FOLDER).glob("*.json")
    index = json.loads(index_file.read_text(encoding="utf-8"))
    tags, places = index["members"]["mcp/tools.json"]
    packed = base64.b64decode(places)
    index["members"]["mcp/tools.json"] = [tags, base64.b64encode(packed[16:]).decode()]
    index_file.write_text(json.dumps(index), encoding="utf-8")
    service(data, EDITED)["summaryZh"] = "改了。"
    rebuild(project, data)
    assert len(made["mcp_tool"]) == len(data["services"])
    assert made["_tool_operation"] == [EDITED]  # openapi.json's spans are whole
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_recording_skips_a_file_the_index_cannot_hold(tmp_path: Path, monkeypatch) -> None:
    """A digest that is not a sha256 is left out (the file is hashed next time); an inode
    above 2**63 (FUSE file systems hash them) is kept, as the same signed 64 bits."""
    out, cache_folder = tmp_path / "out", tmp_path / "cache"
    out.mkdir()
    for name in ("a", "b", "c"):
        (out / name).write_text(name, encoding="utf-8")
    digests = {"a": statcache_sha(b"a"), "b": "zz", "c": statcache_sha(b"c")[:-2]}
    stat = os.stat

    def huge_inode(path, *args, **kwargs):
        found = stat(path, *args, **kwargs)
        if not str(path).endswith(os.sep + "a"):
            return found
        return types.SimpleNamespace(
            st_mode=found.st_mode,
            st_size=found.st_size,
            st_mtime_ns=found.st_mtime_ns,
            st_ctime_ns=found.st_ctime_ns,
            st_ino=(1 << 64) - 5,
        )

    monkeypatch.setattr(statcache.os, "stat", huge_inode)
    statcache.record(cache_folder, out, "code", digests, {})
    index = statcache.load(cache_folder, out, "code")
    assert index is not None and index.paths() == ["a"]
    assert index.known("a") == digests["a"]


def test_a_service_others_link_to_rerenders_their_pages(built, pages, monkeypatch) -> None:
    """Its name shows on the pages listing it as related: their keys cover it."""
    project, data = built
    linked = data["defaults"]["relatedServices"][0]
    service(data, linked)["name"] = "Add One Face To A Database"
    rebuild(project, data)
    assert len(pages) > 1 and linked in pages
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_deleting_a_service_removes_its_files(built, monkeypatch) -> None:
    project, data = built
    data["services"] = [s for s in data["services"] if s["id"] != EDITED]
    written, removed = rebuild(project, data)
    assert f"generated/docs/tools/{EDITED}.html" in removed
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_renaming_a_service(built, pages, monkeypatch) -> None:
    project, data = built
    service(data, EDITED)["id"] = "face-database-list-all"
    written, removed = rebuild(project, data)
    assert "face-database-list-all" in pages
    assert f"generated/catalog/services/{EDITED}.json" in removed
    assert "generated/catalog/services/face-database-list-all.json" in written
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_moving_a_service_renders_nothing_again(built, pages, monkeypatch) -> None:
    """A service's position is not in its key: moving it re-assembles the shared files only."""
    project, data = built
    data["services"].append(data["services"].pop(0))
    rebuild(project, data)
    assert pages == []
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_a_template_change_rerenders_every_service(built, pages, monkeypatch) -> None:
    project, data = built
    mine = project / "mine"
    mine.mkdir()
    page = Path(render.packaged_templates() / "doc_page.html.jinja").read_text(encoding="utf-8")
    (mine / "doc_page.html.jinja").write_text(page.replace("<h1>", "<h1 class=x>"), "utf-8")
    written, _ = rebuild(project, data, "--templates", "mine")
    assert len(pages) == len(data["services"])
    assert sum("/docs/tools/" in p for p in written) == len(data["services"])
    assert snapshot(project / "generated") == cold(
        project, data, monkeypatch, "--templates", "mine"
    )


def test_a_user_entry_template_still_feeds_every_entry_to_catalog_json(built, monkeypatch) -> None:
    """With only catalog_entry.json.jinja overridden, an unchanged service's entry file is
    reused while catalog.json (packaged, streamed) still gets every entry."""
    project, data = built
    mine = project / "mine"
    mine.mkdir()
    entry = render.packaged_templates() / "catalog_entry.json.jinja"
    (mine / "catalog_entry.json.jinja").write_text(entry.read_text("utf-8"), "utf-8")
    rebuild(project, data, "--templates", "mine")
    service(data, EDITED)["summaryZh"] = "改了。"
    service(data, EDITED)["action"] = "ListFaceDbsV3"
    rebuild(project, data, "--templates", "mine")
    assert snapshot(project / "generated") == cold(
        project, data, monkeypatch, "--templates", "mine"
    )


def test_new_x402_terms_make_every_offer_through_that_provider_again(
    built, pages, monkeypatch
) -> None:
    """An offer is made from its service's IR and its x402 provider's terms, which that IR
    does not hold: the terms are in the key of each service paid through that provider,
    and only in theirs."""
    project, data = built
    data["paymentProviders"]["offline"] = {"provider": "x402_facilitator"}  # no offers
    service(data, EDITED)["paymentProvider"] = "offline"
    rebuild(project, data)
    pages.clear()
    provider = data["paymentProviders"]["x402-base-usdc"]
    provider["assetDecimals"], provider["maxTimeoutSeconds"] = 8, 120
    written, _ = rebuild(project, data)
    assert "generated/x402/offers.json" in written
    assert EDITED not in pages and len(pages) == len(data["services"]) - 1
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_a_user_offers_template_gets_every_offer(built, monkeypatch) -> None:
    """A user's x402_offers.json.jinja gets the whole document, offers made for it."""
    project, data = built
    mine = project / "mine"
    mine.mkdir()
    offers = render.packaged_templates() / "x402_offers.json.jinja"
    (mine / offers.name).write_text(offers.read_text("utf-8") + "\n", "utf-8")
    written, _ = rebuild(project, data, "--templates", "mine")
    assert written == {"generated/x402/offers.json", "generated/manifest.json"}
    packaged = cold(project, data, monkeypatch)["x402/offers.json"]
    assert (project / "generated/x402/offers.json").read_bytes() == packaged + b"\n"
    assert len(yaml.safe_load(packaged)["services"]) == len(data["services"])


def test_a_hand_edit_keeping_size_and_mtime_is_still_seen(built) -> None:
    """The stat index compares ctime and inode too: restoring the mtime does not hide an edit."""
    project, _ = built
    assert run_cli("check", cwd=project)[0] == 0  # answered from the caches
    target = project / "generated" / "docs" / "tools" / f"{EDITED}.html"
    stat = target.stat()
    text = target.read_bytes()
    target.write_bytes(text.replace(b"<h1>", b"<h2>", 1))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    code, _, err = run_cli("check", cwd=project)
    assert code == 1 and f"docs/tools/{EDITED}.html" in err
    code, _, err = run_cli("build", cwd=project)  # a hand edit is refused (S402-E103)...
    assert code == 2 and f"docs/tools/{EDITED}.html" in err
    code, _, err = run_cli("build", "--force", cwd=project)  # ...and put back when forced
    assert code == 0 and target.read_bytes() == text


def test_the_index_is_ignored_when_written_for_other_code(built, private_cache) -> None:
    project, _ = built
    out = project / "generated"
    (index_file,) = (private_cache / statcache.FOLDER).glob("*.json")
    assert statcache.load(private_cache, out, "another code key") is None
    data = json.loads(index_file.read_text(encoding="utf-8"))
    assert statcache.load(private_cache, out, data["code"]) is not None
    index_file.write_text(json.dumps({**data, "format": 1}), encoding="utf-8")  # an older one
    assert statcache.load(private_cache, out, data["code"]) is None
    for key in ("stats", "sha256"):  # one file's stat, one file's sha256 short
        packed = base64.b64decode(data[key])
        short = {**data, key: base64.b64encode(packed[:-32]).decode()}
        index_file.write_text(json.dumps(short), encoding="utf-8")
        assert statcache.load(private_cache, out, data["code"]) is None
    index_file.write_text("{not json", encoding="utf-8")
    assert statcache.load(private_cache, out, "any") is None
    assert run_cli("check", cwd=project)[0] == 0  # hashes every file instead


def test_every_file_is_known_right_after_a_build(built, private_cache) -> None:
    project, data = built
    out = project / "generated"
    (index_file,) = (private_cache / statcache.FOLDER).glob("*.json")
    code = yaml.safe_load(index_file.read_text(encoding="utf-8"))["code"]
    index = statcache.load(private_cache, out, code)
    assert index is not None and len(index.services) == len(data["services"])
    on_disk = snapshot(out)
    assert set(index.paths()) == set(on_disk)
    assert all(index.known(path) for path in on_disk)
    (out / "openapi.json").write_bytes(on_disk["openapi.json"])  # rewritten: a new mtime
    assert index.known("openapi.json") is None


def test_the_index_after_an_edit_holds_every_file_as_it_is(built, private_cache) -> None:
    """The files an edit left in place keep the stat verified during the build (not
    stat again): the index still vouches for exactly what is on disk."""
    project, data = built
    service(data, EDITED)["action"] = "ListFaceDbsV2"
    rebuild(project, data)
    out = project / "generated"
    (index_file,) = (private_cache / statcache.FOLDER).glob("*.json")
    code = yaml.safe_load(index_file.read_text(encoding="utf-8"))["code"]
    index = statcache.load(private_cache, out, code)
    assert index is not None
    on_disk = snapshot(out)
    assert set(index.paths()) == set(on_disk)
    assert all(index.known(path) == statcache_sha(content) for path, content in on_disk.items())
    page = out / "docs" / "tools" / "face-search.html"
    page.write_bytes(page.read_bytes() + b" ")  # a hand edit of a file the edit left alone
    assert index.known("docs/tools/face-search.html") is None


def statcache_sha(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def test_an_unchanged_file_is_never_read_back_wrong(built, pages, monkeypatch) -> None:
    """catalog.json takes unchanged entries from their files only when their sha256 still
    matches: a file replaced behind the index's back is computed again."""
    project, data = built
    entry = project / "generated" / "catalog" / "services" / "face-search.json"
    original = entry.read_bytes()
    entry.write_bytes(original.replace(b'"face-search"', b'"face-searcx"', 1))
    service(data, EDITED)["summaryZh"] = "改了。"
    rebuild(project, data, "--force")  # the hand edit is refused without it (S402-E103)
    assert entry.read_bytes() == original
    assert snapshot(project / "generated") == cold(project, data, monkeypatch)


def test_catalog_text_relative_to(tmp_path: Path) -> None:
    """The fixture's catalog is the real one (the tests above edit a copy)."""
    assert yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["services"]
