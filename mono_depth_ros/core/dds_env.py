"""Which Fast DDS settings the project's ROS processes get, in one place (ROS-free).

The CLI (``play``, ``record``, ``demo``), the launch files and the tests all call
:func:`ros_env` / :func:`dds_defaults`, so they make the same choice: the shipped setup
(:data:`SHIPPED_SETUP`) is added only when the user has made no DDS choice of their own, i.e.
none of :data:`DDS_VARIABLES` is set and ``RMW_IMPLEMENTATION`` is unset or Fast DDS. A user's
profile, transport or RMW setting is never replaced. The variables go to the project's own
processes only: the launch files give them to the depth node's process (the ``Node`` action's
``additional_env``, computed from the launch's environment, where a parent launch file's
``SetEnvironmentVariable`` counts as the user's choice), never to the launch as a whole, so
other processes of a parent launch file keep their own DDS setup.

:data:`SETUPS` names the configurations ``mono-depth-ros dds-check`` compares.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

from .paths import package_share_dir

#: Variables through which a user chooses Fast DDS transports / profiles (any of them set
#: means "leave DDS alone").
DDS_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                 "FASTDDS_BUILTIN_TRANSPORTS")


def profile_path(name: str = "fastdds.xml") -> str:
    """Path of a shipped Fast DDS profile in ``config/``."""
    return str(package_share_dir() / "config" / name)


#: name -> (description, variables). Values starting with ``config/`` are shipped files.
SETUPS: Dict[str, tuple] = {
    "default": ("Fast DDS defaults (shared memory 0.5 MB segment + UDPv4)", {}),
    "large_data": ("FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA (UDP discovery, TCP + shared memory "
                   "data)", {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}),
    "profile": ("FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds.xml (shipped)",
                {"FASTDDS_DEFAULT_PROFILES_FILE": "config/fastdds.xml"}),
    "udp_only": ("FASTDDS_BUILTIN_TRANSPORTS=UDPv4: no shared memory, like a peer on another "
                 "host", {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}),
}

#: What the project's processes get when the user made no DDS choice (see the README's
#: measured comparison).
SHIPPED_SETUP = "profile"


def setup_variables(name: str) -> Dict[str, str]:
    """Environment variables of setup ``name``: a key of :data:`SETUPS`, or ``xml:PATH`` (a
    profile file) or ``transports:VALUE`` (``FASTDDS_BUILTIN_TRANSPORTS``) for experiments.

    Raises:
        KeyError: unknown name (lists the valid ones).
    """
    if name.startswith("xml:"):
        return {"FASTDDS_DEFAULT_PROFILES_FILE": name[4:]}
    if name.startswith("transports:"):
        return {"FASTDDS_BUILTIN_TRANSPORTS": name[11:]}
    if name not in SETUPS:
        raise KeyError(f"unknown DDS setup {name!r}; valid: {', '.join(SETUPS)}, xml:PATH, "
                       "transports:VALUE")
    return {k: profile_path(v[len("config/"):]) if v.startswith("config/") else v
            for k, v in SETUPS[name][1].items()}


def setup_env(name: str, base: Mapping[str, str]) -> Dict[str, str]:
    """``base`` with setup ``name``'s variables applied (overriding)."""
    return {**base, **setup_variables(name)}


def user_chose_dds(environ: Mapping[str, str]) -> bool:
    """True when ``environ`` already holds a DDS choice: a Fast DDS profile / transport
    variable, or an RMW other than Fast DDS."""
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    return any(environ.get(v) for v in DDS_VARIABLES) or (
        bool(rmw) and not rmw.startswith("rmw_fastrtps"))


def dds_defaults(environ: Mapping[str, str]) -> Dict[str, str]:
    """The variables to add to ``environ``: the shipped setup, or nothing when the user chose."""
    return {} if user_chose_dds(environ) else setup_variables(SHIPPED_SETUP)


def ros_env(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``base`` (default ``os.environ``) plus :func:`dds_defaults`; nothing is overridden."""
    import os
    env = dict(os.environ if base is None else base)
    env.update(dds_defaults(env))
    return env
