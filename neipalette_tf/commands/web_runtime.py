"""Install the page's on-device runtime: `python -m neipalette_tf.web_runtime`.

    python -m neipalette_tf.web_runtime

Runs `npm ci` on the pinned neipalette_tf/serving/web/package.json and
package-lock.json (@litertjs/core, LiteRT.js: WASM builds of LiteRT) in a
scratch folder and copies the files the page at `/` loads into
neipalette_tf/serving/web/vendor/ (about 38 MB; replaced as a whole, and
only when this command wrote it). `serve` then serves them, and the page
can score photos on the device itself (docs/on_device.md). Needs Node.js
with npm, and the npm registry once; nothing is fetched when the page runs.
"""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.serving import web_runtime


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.web_runtime", description=__doc__.splitlines()[0])
    p.parse_args(argv)
    web_runtime.install()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
