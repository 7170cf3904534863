"""Content-addressed caches through the real job system: the same work is done once, and a
cache hit shares the earlier job's library files, and deleting that job cannot break this one."""

from __future__ import annotations


def test_same_file_split_twice_is_separated_once(api, song_wav):
    params = {"stems": ["drums", "bass"], "output_format": "wav"}
    first = api.run("stems", [song_wav], params)
    second = api.run("stems", [song_wav], params)
    assert first["status"] == second["status"] == "completed", (first, second)
    assert first["result"]["cached"] is False and second["result"]["cached"] is True
    assert second["stages"][0]["engine"] == first["stages"][0]["engine"]
    a = {o["name"]: o for o in first["outputs"]}
    b = {o["name"]: o for o in second["outputs"]}
    assert set(a) == set(b) >= {"drums", "bass"}
    # Shared, not copied: the same library file (stored once), kept while the second job uses it.
    assert all(b[n]["file_id"] == a[n]["file_id"] and b[n]["path"] == a[n]["path"] for n in a)
    drums = api.fetch(b["drums"]["url"])
    assert api.delete(f"/api/v1/jobs/{first['id']}").status_code == 200
    again = api.get(f"/api/v1/jobs/{second['id']}").json()
    assert api.fetch({o["name"]: o for o in again["outputs"]}["drums"]["url"]) == drums


def test_analysis_cache_is_per_user(client, new_user, song_wav):
    from tests.conftest import Api

    alice, bob = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    assert alice.run("analyze", [song_wav])["result"]["cached"] is False
    assert alice.run("analyze", [song_wav])["result"]["cached"] is True
    # Bob's upload of the same bytes is computed for him: a cache hit would tell him that
    # someone else uploaded this file.
    assert bob.run("analyze", [song_wav])["result"]["cached"] is False
