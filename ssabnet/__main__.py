from ssabnet.cli import main

raise SystemExit(main())
