from deployer.main import main

raise SystemExit(main())
