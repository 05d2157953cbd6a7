import asyncio
import logging

from .main import serve
from .settings import EmulatorSettings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
asyncio.run(serve(EmulatorSettings()))
