"""The lowest layer: plain helpers every app may import (errors and their HTTP shape,
request ids, log formatting, schema pieces). It imports no Framecast app."""
