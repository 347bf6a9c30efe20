"""``spark-dl-runner --help``: Hydra's help template (``conf/hydra/help/runner.yaml``) with
each group's options listed without the ``base_*`` schemas they extend."""

from __future__ import annotations

import string

from omegaconf import OmegaConf


def text(argv: list[str]) -> str:
    """The help for ``argv`` (``--config-dir`` and overrides apply, as to a run)."""
    from hydra._internal.utils import get_args_parser
    from hydra.types import RunMode

    from runner.config.composition import (
        COMPOSITION_ERRORS,
        CONFIG_NAME,
        app,
        describe,
        full_error,
    )
    from runner.errors import RunnerError

    parser = get_args_parser()
    args, _ = parser.parse_known_args(argv)
    with app(args.config_dir) as hydra:
        try:
            cfg = hydra.compose_config(
                args.config_name or CONFIG_NAME,
                args.overrides,
                run_mode=RunMode.RUN,
                with_log_configuration=False,
            )
        except COMPOSITION_ERRORS as err:  # `model=mlpp --help`: the same line as without --help
            if full_error():
                raise
            raise RunnerError(describe(err)) from None
        groups = [g for g in hydra.list_all_config_groups() if g.split("/")[0] != "hydra"]
        lines = [
            f"{group}: "
            + ", ".join(
                o
                for o in sorted(hydra.config_loader.get_group_options(group))
                if not o.startswith("base_")
            )
            for group in sorted(groups)
        ]
        template = str(cfg.hydra.help.template)
        return string.Template(template).safe_substitute(
            FLAGS_HELP=hydra.format_args_help(parser),
            APP_CONFIG_GROUPS="\n".join(lines),
            CONFIG=OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])),
        )
