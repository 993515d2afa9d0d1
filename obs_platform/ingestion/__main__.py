from obs_platform.ingestion.stream import main

main()
