from limr.cli.main import main

main()
