"""A small stack of its own for the key-handling tests: they rotate and withdraw keys and stop the
identity provider, which no shared stack may suffer.

One emulator and four API processes over HTTPS on free ports:
- `api` and `downstream` (the api calling it): read the key set before a rotation; must pick up
  the new key after one refresh interval, without a restart;
- `witness` (a downstream-api): read the key set after the rotation, so it holds the retired key
  too; must stop accepting it once the provider withdraws it;
- `cold` (a downstream-api): never sees a token until the provider is down, so it holds no key at all.

Its services read the key set with short intervals (KEY_SET_REFRESH_SECONDS and KEY_SET_MAX_AGE_SECONDS
are settings): a refresh is due within seconds, so no test waits out the production default of 30 s.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.launch import LiveEmulator, LiveService, launch_service, start_emulator
from tests.support.tokens import Api, Issuer, apis_at


@dataclass
class KeyLab:
    emulator: LiveEmulator
    services: dict[str, LiveService]
    targets: dict[str, Api]  # "api", "downstream", "witness", "cold"
    issuer: Issuer
    first_kid: str = ""
    second_kid: str = ""
    # When each warmed service last read the key set (time.monotonic()).
    fetched_at: dict[str, float] = field(default_factory=dict)
    # What the services answered while warming up: (status, WWW-Authenticate) by label.
    seen: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    @property
    def info(self) -> dict[str, object]:
        return {**self.emulator.info, "ca_bundle": str(self.emulator.tls.ca_bundle)}

    def http(self) -> httpx.Client:
        tls = ssl.create_default_context(cafile=self.emulator.tls.ca_bundle)
        return httpx.Client(verify=tls, timeout=15, trust_env=False)

    def get(self, http: httpx.Client, target: str, token: str) -> httpx.Response:
        api = self.targets[target]
        return http.get(api.url(), headers={"Authorization": f"Bearer {token}"})

    def token(self, target: str, kid: str) -> str:
        return self.issuer.token(self.targets[target], kid=kid)

    def stop(self) -> None:
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop()
        self.emulator.stop()


# The key-set intervals of the lab's services: long enough that the warm-up's requests all fall inside
# one, short enough that waiting for the next refresh costs seconds.
INTERVAL = 3.0


def _intervals(prefix: str) -> dict[str, str]:
    return {f"{prefix}_KEY_SET_REFRESH_SECONDS": str(INTERVAL), f"{prefix}_KEY_SET_MAX_AGE_SECONDS": str(INTERVAL)}


def start_key_lab(local: Path) -> KeyLab:
    emulator = start_emulator(local)
    logs = local / "logs"
    services: dict[str, LiveService] = {}
    lab = KeyLab(emulator, services, {}, Issuer(emulator))
    try:
        authority = emulator.authority()

        def downstream(name: str) -> LiveService:
            env = {
                "DOWNSTREAM_AUTHORITY": authority,
                "DOWNSTREAM_STATE_DIR": str(local / name),
                **_intervals("DOWNSTREAM"),
            }
            return launch_service("downstream_api", "DOWNSTREAM", env, emulator=emulator, log_dir=logs)

        def api(its_downstream: Future[LiveService]) -> LiveService:
            env = {
                "API_AUTHORITY": authority,
                "API_DOWNSTREAM_URL": its_downstream.result().base,
                **emulator.managed_identity_env("api"),
                **_intervals("API"),
            }
            return launch_service("api", "API", env, emulator=emulator, log_dir=logs)

        with ThreadPoolExecutor(4) as pool:
            started = {name: pool.submit(downstream, name) for name in ("downstream", "witness", "cold")}
            started["api"] = pool.submit(api, started["downstream"])
            # Keep every one that did start, so a failure elsewhere still stops them all.
            for name, future in started.items():
                if future.exception() is None:
                    services[name] = future.result()
            for future in started.values():
                future.result()
        pair = apis_at(services["api"].base, services["downstream"].base)
        lab.targets.update(
            api=pair["api"],
            downstream=pair["downstream-api"],
            witness=apis_at(services["api"].base, services["witness"].base)["downstream-api"],
            cold=apis_at(services["api"].base, services["cold"].base)["downstream-api"],
        )
        _warm_up(lab)
    except BaseException:
        lab.stop()
        raise
    return lab


def _warm_up(lab: KeyLab) -> None:
    lab.first_kid = lab.issuer.kids()[-1]
    lab.issuer.private_key(lab.first_kid)  # kept in memory: it leaves the disk when withdrawn
    with lab.http() as http:
        # api and downstream read the key set while it holds only the first key.
        for target in ("downstream", "api"):
            r = lab.get(http, target, lab.token(target, lab.first_kid))
            lab.fetched_at[target] = time.monotonic()
            lab.seen[f"{target}-first-key"] = (r.status_code, r.headers.get("www-authenticate"))
        rotated = lab.emulator.admin("keys/rotate")
        lab.second_kid = str(rotated["kid"])
        lab.issuer.private_key(lab.second_kid)
        # Within the interval the new kid is unknown to them and not looked up again yet.
        for target in ("downstream", "api"):
            r = lab.get(http, target, lab.token(target, lab.second_kid))
            lab.seen[f"{target}-second-key-early"] = (r.status_code, r.headers.get("www-authenticate"))
        # The witness reads the key set during the rotation's overlap: both keys.
        r = lab.get(http, "witness", lab.token("witness", lab.first_kid))
        lab.fetched_at["witness"] = time.monotonic()
        lab.seen["witness-first-key"] = (r.status_code, r.headers.get("www-authenticate"))
        r = lab.get(http, "witness", lab.token("witness", lab.second_kid))
        lab.seen["witness-second-key"] = (r.status_code, r.headers.get("www-authenticate"))
