"""`neipalette COMMAND [args]` (or `python -m neipalette_tf COMMAND`): every tool under one command.

The commands are `neipalette_tf.commands.COMMANDS`; `neipalette train ...` runs
`neipalette_tf/commands/train.py` as `python -m neipalette_tf.train ...` does.
`neipalette --help` lists them without loading TensorFlow.
"""

import runpy
import sys

from neipalette_tf.commands import COMMANDS, module


def usage():
    width = max(map(len, COMMANDS))
    lines = ["usage: neipalette COMMAND [args]   (neipalette COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    sys.argv = [f"neipalette {argv[0]}", *argv[1:]]
    runpy.run_module(module(argv[0]), run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
