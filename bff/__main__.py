import uvicorn

from obs_platform.settings import get_settings

settings = get_settings()
uvicorn.run("bff.main:create_app", factory=True, host=settings.bind_host, port=settings.bff_port, log_level="info")
