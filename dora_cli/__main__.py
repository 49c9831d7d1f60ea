from dora_cli.main import run

run()
