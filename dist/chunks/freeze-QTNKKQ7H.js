import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d,e}from"./chunk-MGWZYSZT.js";import"./chunk-WO47TEWM.js";import"./chunk-UZMZCFOP.js";export{b as FREEZE_FORM,a as FreezeError,d as activeFreeze,e as freezeDocument,c as parseFreezes};
