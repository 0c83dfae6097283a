"""Static HTML reports rendered from gradfuzz results directories.

A report reads files only; it never imports the engine, torch or the fuzz
package (DESIGN.md: campaign -> results directory -> report).
"""

from .site import render_site

__all__ = ["render_site"]
